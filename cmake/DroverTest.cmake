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
# corpus.
set(DROVER_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz target runs under ctest")
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
endfunction()
