
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/core/cpu_features.c" "CMakeFiles/lowbit_lib.dir/src/core/cpu_features.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/core/cpu_features.c.o.d"
  "/work/main/src/core/fp16.c" "CMakeFiles/lowbit_lib.dir/src/core/fp16.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/core/fp16.c.o.d"
  "/work/main/src/core/progress.c" "CMakeFiles/lowbit_lib.dir/src/core/progress.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/core/progress.c.o.d"
  "/work/main/src/core/source.c" "CMakeFiles/lowbit_lib.dir/src/core/source.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/core/source.c.o.d"
  "/work/main/src/core/status.c" "CMakeFiles/lowbit_lib.dir/src/core/status.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/core/status.c.o.d"
  "/work/main/src/core/threads.c" "CMakeFiles/lowbit_lib.dir/src/core/threads.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/core/threads.c.o.d"
  "/work/main/src/eval/perplexity.c" "CMakeFiles/lowbit_lib.dir/src/eval/perplexity.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/eval/perplexity.c.o.d"
  "/work/main/src/formats/traits.c" "CMakeFiles/lowbit_lib.dir/src/formats/traits.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/formats/traits.c.o.d"
  "/work/main/src/io/gguf_read.c" "CMakeFiles/lowbit_lib.dir/src/io/gguf_read.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/io/gguf_read.c.o.d"
  "/work/main/src/io/gguf_types.c" "CMakeFiles/lowbit_lib.dir/src/io/gguf_types.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/io/gguf_types.c.o.d"
  "/work/main/src/io/gguf_write.c" "CMakeFiles/lowbit_lib.dir/src/io/gguf_write.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/io/gguf_write.c.o.d"
  "/work/main/src/kernels/matmul.c" "CMakeFiles/lowbit_lib.dir/src/kernels/matmul.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/kernels/matmul.c.o.d"
  "/work/main/src/model/forward.c" "CMakeFiles/lowbit_lib.dir/src/model/forward.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/model/forward.c.o.d"
  "/work/main/src/model/load_gguf.c" "CMakeFiles/lowbit_lib.dir/src/model/load_gguf.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/model/load_gguf.c.o.d"
  "/work/main/src/model/load_llama2c.c" "CMakeFiles/lowbit_lib.dir/src/model/load_llama2c.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/model/load_llama2c.c.o.d"
  "/work/main/src/model/model.c" "CMakeFiles/lowbit_lib.dir/src/model/model.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/model/model.c.o.d"
  "/work/main/src/model/sampler.c" "CMakeFiles/lowbit_lib.dir/src/model/sampler.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/model/sampler.c.o.d"
  "/work/main/src/model/save_gguf.c" "CMakeFiles/lowbit_lib.dir/src/model/save_gguf.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/model/save_gguf.c.o.d"
  "/work/main/src/tokenizer/spm_bpe.c" "CMakeFiles/lowbit_lib.dir/src/tokenizer/spm_bpe.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/tokenizer/spm_bpe.c.o.d"
  "/work/main/src/tokenizer/vocab.c" "CMakeFiles/lowbit_lib.dir/src/tokenizer/vocab.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/tokenizer/vocab.c.o.d"
  "/work/main/src/tokenizer/vocab_files.c" "CMakeFiles/lowbit_lib.dir/src/tokenizer/vocab_files.c.o" "gcc" "CMakeFiles/lowbit_lib.dir/src/tokenizer/vocab_files.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
