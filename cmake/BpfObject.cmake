# SPDX-License-Identifier: Apache-2.0
# BPF objects and their libbpf skeletons.
#
#   bpf_object(NAME SOURCE src.bpf.c [INCLUDES dir ...] [DEPENDS file ...]
#              [DEFINES MACRO[=value] ...] [CPU v1|v2|v3])
#
# compiles SOURCE with clang -target bpf (CO-RE, against a vmlinux.h dumped
# at build time from the running kernel's BTF) into
# ${CMAKE_CURRENT_BINARY_DIR}/NAME.bpf.o, generates NAME.skel.h next to it
# with `bpftool gen skeleton` (struct NAME, NAME__open_and_load(), ...), and
# defines the INTERFACE target NAME_skel: link it to get the include path
# and the build-order dependency. CPU is clang's -mcpu for the BPF target
# (default: clang's own, v1); v3 adds 32-bit jumps and ALU, which the
# kernel accepts from 5.1 on.
include_guard(GLOBAL)

find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
set(DROVER_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "Kernel BTF for vmlinux.h")

execute_process(COMMAND gcc -dumpmachine OUTPUT_VARIABLE _bpf_triplet
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT _bpf_triplet)
  set(_bpf_triplet x86_64-linux-gnu)
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(_bpf_arch arm64)
else()
  set(_bpf_arch x86)
endif()
# include_guard(GLOBAL) skips this file in later directories, so everything
# bpf_object() reads must be visible everywhere: cache it.
set(_bpf_triplet ${_bpf_triplet} CACHE INTERNAL "")
set(_bpf_arch ${_bpf_arch} CACHE INTERNAL "")
set(BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen CACHE INTERNAL "")
set(BPF_VMLINUX_H ${BPF_GEN_DIR}/vmlinux.h CACHE INTERNAL "")
add_custom_command(
  OUTPUT ${BPF_VMLINUX_H}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${BPF_GEN_DIR}
  COMMAND sh -c "'${BPFTOOL}' btf dump file '${DROVER_VMLINUX_BTF}' format c > '${BPF_VMLINUX_H}.tmp' && mv '${BPF_VMLINUX_H}.tmp' '${BPF_VMLINUX_H}'"
  COMMENT "Generating vmlinux.h from ${DROVER_VMLINUX_BTF}"
  VERBATIM)
add_custom_target(bpf_vmlinux_h DEPENDS ${BPF_VMLINUX_H})

function(bpf_object name)
  cmake_parse_arguments(B "" "SOURCE;CPU" "INCLUDES;DEPENDS;DEFINES" ${ARGN})
  if(NOT B_SOURCE)
    message(FATAL_ERROR "bpf_object(${name}): SOURCE is required")
  endif()
  get_filename_component(src ${B_SOURCE} ABSOLUTE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  set(incs -I${BPF_GEN_DIR} -I/usr/include/${_bpf_triplet})
  foreach(dir ${B_INCLUDES})
    get_filename_component(dir ${dir} ABSOLUTE)
    list(APPEND incs -I${dir})
  endforeach()
  foreach(def ${B_DEFINES})
    list(APPEND incs -D${def})
  endforeach()
  if(B_CPU)
    list(APPEND incs -mcpu=${B_CPU})
  endif()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -O2 -g -target bpf -D__TARGET_ARCH_${_bpf_arch}
            -Wall -Wextra -Wno-unused-parameter -Werror ${incs}
            -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src} ${BPF_VMLINUX_H} ${B_DEPENDS}
    DEPFILE ${obj}.d
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "'${BPFTOOL}' gen skeleton '${obj}' name ${name} > '${skel}.tmp' && mv '${skel}.tmp' '${skel}'"
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_gen DEPENDS ${obj} ${skel})
  add_dependencies(${name}_gen bpf_vmlinux_h)
  add_library(${name}_skel INTERFACE)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  add_dependencies(${name}_skel ${name}_gen)
  set(${name}_BPF_OBJECT ${obj} PARENT_SCOPE)
endfunction()
