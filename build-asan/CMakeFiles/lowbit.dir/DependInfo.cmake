
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/cli/args.c" "CMakeFiles/lowbit.dir/cli/args.c.o" "gcc" "CMakeFiles/lowbit.dir/cli/args.c.o.d"
  "/work/main/cli/cmd_convert.c" "CMakeFiles/lowbit.dir/cli/cmd_convert.c.o" "gcc" "CMakeFiles/lowbit.dir/cli/cmd_convert.c.o.d"
  "/work/main/cli/cmd_eval.c" "CMakeFiles/lowbit.dir/cli/cmd_eval.c.o" "gcc" "CMakeFiles/lowbit.dir/cli/cmd_eval.c.o.d"
  "/work/main/cli/cmd_info.c" "CMakeFiles/lowbit.dir/cli/cmd_info.c.o" "gcc" "CMakeFiles/lowbit.dir/cli/cmd_info.c.o.d"
  "/work/main/cli/cmd_inspect.c" "CMakeFiles/lowbit.dir/cli/cmd_inspect.c.o" "gcc" "CMakeFiles/lowbit.dir/cli/cmd_inspect.c.o.d"
  "/work/main/cli/cmd_run.c" "CMakeFiles/lowbit.dir/cli/cmd_run.c.o" "gcc" "CMakeFiles/lowbit.dir/cli/cmd_run.c.o.d"
  "/work/main/cli/cmd_tokenize.c" "CMakeFiles/lowbit.dir/cli/cmd_tokenize.c.o" "gcc" "CMakeFiles/lowbit.dir/cli/cmd_tokenize.c.o.d"
  "/work/main/cli/main.c" "CMakeFiles/lowbit.dir/cli/main.c.o" "gcc" "CMakeFiles/lowbit.dir/cli/main.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build-asan/CMakeFiles/lowbit_lib.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
