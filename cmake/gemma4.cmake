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
  target_compile_options(${name} PRIVATE ${GEMMA4_WARNINGS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} gemma4_testutil GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    GEMMA4_SOURCE_DIR="${PROJECT_SOURCE_DIR}" GEMMA4_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

add_library(gemma4_testutil STATIC ${PROJECT_SOURCE_DIR}/tests/testutil.cc)
target_include_directories(gemma4_testutil PUBLIC ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(gemma4_testutil PUBLIC GTest::gtest)
target_compile_definitions(gemma4_testutil PRIVATE
  GEMMA4_SOURCE_DIR="${PROJECT_SOURCE_DIR}" GEMMA4_BINARY_DIR="${PROJECT_BINARY_DIR}")
