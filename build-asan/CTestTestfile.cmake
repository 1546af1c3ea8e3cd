# CMake generated Testfile for 
# Source directory: /work/main
# Build directory: /work/main/build-asan
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test(unit.test_core "/work/main/build-asan/test_core")
set_tests_properties(unit.test_core PROPERTIES  SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;53;add_test;/work/main/CMakeLists.txt;0;")
add_test(unit.test_gguf "/work/main/build-asan/test_gguf")
set_tests_properties(unit.test_gguf PROPERTIES  SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;53;add_test;/work/main/CMakeLists.txt;0;")
add_test(unit.test_model "/work/main/build-asan/test_model")
set_tests_properties(unit.test_model PROPERTIES  SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;53;add_test;/work/main/CMakeLists.txt;0;")
add_test(unit.test_tokenizer "/work/main/build-asan/test_tokenizer")
set_tests_properties(unit.test_tokenizer PROPERTIES  SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;53;add_test;/work/main/CMakeLists.txt;0;")
add_test(cli.bad_input "bash" "/work/main/tests/cli/bad_input.sh" "/work/main/build-asan/lowbit" "/work/main" "/work/main/../shared/data")
set_tests_properties(cli.bad_input PROPERTIES  ENVIRONMENT "LB_TEST_QUICK=1" SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;60;add_test;/work/main/CMakeLists.txt;0;")
add_test(cli.eval "bash" "/work/main/tests/cli/eval.sh" "/work/main/build-asan/lowbit" "/work/main" "/work/main/../shared/data")
set_tests_properties(cli.eval PROPERTIES  ENVIRONMENT "LB_TEST_QUICK=1" SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;60;add_test;/work/main/CMakeLists.txt;0;")
add_test(cli.greedy "bash" "/work/main/tests/cli/greedy.sh" "/work/main/build-asan/lowbit" "/work/main" "/work/main/../shared/data")
set_tests_properties(cli.greedy PROPERTIES  ENVIRONMENT "LB_TEST_QUICK=1" SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;60;add_test;/work/main/CMakeLists.txt;0;")
add_test(cli.tokenize "bash" "/work/main/tests/cli/tokenize.sh" "/work/main/build-asan/lowbit" "/work/main" "/work/main/../shared/data")
set_tests_properties(cli.tokenize PROPERTIES  ENVIRONMENT "LB_TEST_QUICK=1" SKIP_RETURN_CODE "77" _BACKTRACE_TRIPLES "/work/main/CMakeLists.txt;60;add_test;/work/main/CMakeLists.txt;0;")
