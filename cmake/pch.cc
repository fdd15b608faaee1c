// Translation unit of gemma4_test_pch (cmake/gemma4.cmake): it exists so that CMake builds the
// precompiled header every test target reuses. It has no code of its own.
