# Empty dependencies file for test_gguf.
# This may be replaced when dependencies are built.
