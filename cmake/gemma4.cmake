# Helpers shared by every folder's CMakeLists.txt.

find_package(GTest REQUIRED)
include(GoogleTest)

# gemma4_library(NAME SOURCES... [DEPS ...]): a static library of one responsibility.
function(gemma4_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(${name} PRIVATE ${GEMMA4_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# gemma4_test(NAME SOURCES... DEPS ...): a googletest binary registered with CTest.
# Tests find ../shared through the GEMMA4_SHARED_DIR environment variable or the checkout's sibling folder.
function(gemma4_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${GEMMA4_WARNINGS} ${GEMMA4_GLUE_OPT})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} gemma4_testutil GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    GEMMA4_SOURCE_DIR="${PROJECT_SOURCE_DIR}" GEMMA4_BINARY_DIR="${PROJECT_BINARY_DIR}")
  target_precompile_headers(${name} REUSE_FROM gemma4_test_pch)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

# Precompiled headers. CI builds everything twice (plain, then with sanitizers) on two cores, and
# most of a test file's compile time goes to googletest's and nlohmann-json's headers: they are
# parsed once, for gemma4_test_pch, and every test target reuses that parse. The flags must match
# the test targets' (GCC quietly falls back to reading the headers where they do not, so a
# mismatch costs time, never correctness).
add_library(gemma4_test_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch.cc)
target_compile_options(gemma4_test_pch PRIVATE ${GEMMA4_WARNINGS} ${GEMMA4_GLUE_OPT})
target_link_libraries(gemma4_test_pch PRIVATE GTest::gtest nlohmann_json::nlohmann_json)
target_compile_definitions(gemma4_test_pch PRIVATE
  GEMMA4_SOURCE_DIR="${PROJECT_SOURCE_DIR}" GEMMA4_BINARY_DIR="${PROJECT_BINARY_DIR}")
target_precompile_headers(gemma4_test_pch PRIVATE
  <gtest/gtest.h> <nlohmann/json.hpp> <algorithm> <cmath> <cstdint> <cstring> <functional> <map> <memory>
  <string> <thread> <vector>)

add_library(gemma4_testutil STATIC ${PROJECT_SOURCE_DIR}/tests/testutil.cc ${PROJECT_SOURCE_DIR}/tests/chi_square.cc)
target_include_directories(gemma4_testutil PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(gemma4_testutil PUBLIC GTest::gtest)
target_compile_definitions(gemma4_testutil PRIVATE
  GEMMA4_SOURCE_DIR="${PROJECT_SOURCE_DIR}" GEMMA4_BINARY_DIR="${PROJECT_BINARY_DIR}")
