# SPDX-License-Identifier: Apache-2.0
# Helpers shared by tests/, bench/ and the components.

# Add every direct subdirectory of the current source dir that has a
# CMakeLists.txt (tests/unit/<component>, tests/fuzz/<component>, ...).
function(drover_add_subdirs)
  file(GLOB children LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child ${children})
    if(IS_DIRECTORY ${child} AND EXISTS ${child}/CMakeLists.txt)
      add_subdirectory(${child})
    endif()
  endforeach()
endfunction()

# drover_check_test(NAME SOURCES a.c b.c LIBS drover ... [LABELS l] [TIMEOUT s])
# A check(3) unit test suite, registered with CTest under label "unit".
function(drover_check_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(DROVER_FUZZ)
    return()
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CHECK)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}"
                       TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
                       ENVIRONMENT "CK_DEFAULT_TIMEOUT=60")
endfunction()

# drover_fuzz_target(NAME SOURCES f.c LIBS drover CORPUS dir [SECONDS n])
# Built only with -DDROVER_FUZZ=ON; registered as a CTest test (label
# "fuzz") that runs the target for a bounded time on a copy of its seed
# corpus, and as NAME_long (label "fuzz_long", DROVER_FUZZ_LONG_SECONDS)
# for the rotating longer stage (tests/fuzz/run-rotation.sh).
set(DROVER_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz target runs under ctest")
set(DROVER_FUZZ_LONG_SECONDS 100 CACHE STRING
    "Seconds each target of the rotating fuzz stage runs")
function(drover_fuzz_target name)
  cmake_parse_arguments(F "" "CORPUS;SECONDS" "SOURCES;LIBS" ${ARGN})
  if(NOT DROVER_FUZZ)
    return()
  endif()
  add_executable(${name} ${F_SOURCES})
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  if(NOT F_SECONDS)
    set(F_SECONDS ${DROVER_FUZZ_SECONDS})
  endif()
  set(work ${CMAKE_CURRENT_BINARY_DIR}/${name}-corpus)
  add_test(NAME ${name}
           COMMAND ${CMAKE_SOURCE_DIR}/tests/fuzz/run-fuzz.sh
                   $<TARGET_FILE:${name}> ${F_CORPUS} ${work} ${F_SECONDS})
  math(EXPR limit "${F_SECONDS} + 120")
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT ${limit})
  add_test(NAME ${name}_long
           COMMAND ${CMAKE_SOURCE_DIR}/tests/fuzz/run-fuzz.sh
                   $<TARGET_FILE:${name}> ${F_CORPUS} ${work}-long ${DROVER_FUZZ_LONG_SECONDS})
  math(EXPR limit "${DROVER_FUZZ_LONG_SECONDS} + 120")
  set_tests_properties(${name}_long PROPERTIES LABELS fuzz_long TIMEOUT ${limit})
endfunction()

# drover_component_library(NAME [LIBS ...])
# Builds every *.c of the current folder except main.c into the static
# library NAME (so tests and benchmarks link the same code as the daemon).
function(drover_component_library name)
  cmake_parse_arguments(L "" "" "LIBS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  list(FILTER srcs EXCLUDE REGEX "/main\\.c$")
  if(NOT srcs)
    return() # component has no modules yet
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC drover ${L_LIBS})
endfunction()

# drover_unit_tests_glob(PREFIX LIBS ...)
# Every test_<x>.c in the current folder becomes the check suite
# <PREFIX>_<x>, linked with LIBS.
function(drover_unit_tests_glob prefix)
  cmake_parse_arguments(G "" "" "LIBS" ${ARGN})
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_*.c)
  foreach(src ${tests})
    get_filename_component(base ${src} NAME_WE)
    string(REGEX REPLACE "^test_" "" base ${base})
    drover_check_test(${prefix}_${base} SOURCES ${src} LIBS ${G_LIBS})
  endforeach()
endfunction()

# drover_fuzz_glob(PREFIX LIBS ...)
# Every fuzz_<x>.c in the current folder becomes the libFuzzer target
# <PREFIX>_fuzz_<x> with seed corpus corpus/<x>/.
function(drover_fuzz_glob prefix)
  cmake_parse_arguments(G "" "" "LIBS" ${ARGN})
  file(GLOB targets CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_*.c)
  foreach(src ${targets})
    get_filename_component(base ${src} NAME_WE)
    string(REGEX REPLACE "^fuzz_" "" base ${base})
    drover_fuzz_target(${prefix}_fuzz_${base} SOURCES ${src} LIBS ${G_LIBS}
                       CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/${base})
  endforeach()
endfunction()
