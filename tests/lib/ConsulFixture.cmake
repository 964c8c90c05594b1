# SPDX-License-Identifier: Apache-2.0
# drover_consul_fixture(NAME [ACL] [TLS])
# A CTest fixture NAME that starts a real `consul agent -dev` on free
# loopback ports before the tests that require it and stops it after them:
#
#   drover_consul_fixture(watcher_consul)
#   add_test(NAME t COMMAND t)
#   set_tests_properties(t PROPERTIES FIXTURES_REQUIRED watcher_consul
#                        ENVIRONMENT "DROVER_CONSUL_STATE=${DROVER_CONSUL_STATE_watcher_consul}")
#
# The test reads $DROVER_CONSUL_STATE/addr (http://127.0.0.1:PORT) and, with
# ACL, $DROVER_CONSUL_STATE/master-token; with TLS, https_addr, ca.pem and
# tls_server_name (see consul-dev.sh). Tests sharing one fixture must use
# their own key prefixes. The variable DROVER_CONSUL_STATE_<NAME> holds the
# state directory (set in the caller's scope).
set(DROVER_CONSUL_DEV ${CMAKE_CURRENT_LIST_DIR}/consul-dev.sh CACHE INTERNAL "")
function(drover_consul_fixture name)
  cmake_parse_arguments(F "ACL;TLS" "" "" ${ARGN})
  set(state ${CMAKE_CURRENT_BINARY_DIR}/${name}.state)
  set(extra)
  if(F_ACL)
    list(APPEND extra --acl)
  endif()
  if(F_TLS)
    list(APPEND extra --tls)
  endif()
  add_test(NAME ${name}_start COMMAND ${DROVER_CONSUL_DEV} start ${state} ${extra})
  add_test(NAME ${name}_stop COMMAND ${DROVER_CONSUL_DEV} stop ${state})
  set_tests_properties(${name}_start PROPERTIES FIXTURES_SETUP ${name}
                       LABELS "integration;fixture" TIMEOUT 90)
  set_tests_properties(${name}_stop PROPERTIES FIXTURES_CLEANUP ${name}
                       LABELS "integration;fixture" TIMEOUT 30)
  set(DROVER_CONSUL_STATE_${name} ${state} PARENT_SCOPE)
endfunction()
