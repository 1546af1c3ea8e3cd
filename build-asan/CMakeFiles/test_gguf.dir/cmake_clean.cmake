file(REMOVE_RECURSE
  "CMakeFiles/test_gguf.dir/tests/unit/test_gguf.c.o"
  "CMakeFiles/test_gguf.dir/tests/unit/test_gguf.c.o.d"
  "test_gguf"
  "test_gguf.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_gguf.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
