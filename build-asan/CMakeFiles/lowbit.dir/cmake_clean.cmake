file(REMOVE_RECURSE
  "CMakeFiles/lowbit.dir/cli/args.c.o"
  "CMakeFiles/lowbit.dir/cli/args.c.o.d"
  "CMakeFiles/lowbit.dir/cli/cmd_convert.c.o"
  "CMakeFiles/lowbit.dir/cli/cmd_convert.c.o.d"
  "CMakeFiles/lowbit.dir/cli/cmd_eval.c.o"
  "CMakeFiles/lowbit.dir/cli/cmd_eval.c.o.d"
  "CMakeFiles/lowbit.dir/cli/cmd_info.c.o"
  "CMakeFiles/lowbit.dir/cli/cmd_info.c.o.d"
  "CMakeFiles/lowbit.dir/cli/cmd_inspect.c.o"
  "CMakeFiles/lowbit.dir/cli/cmd_inspect.c.o.d"
  "CMakeFiles/lowbit.dir/cli/cmd_run.c.o"
  "CMakeFiles/lowbit.dir/cli/cmd_run.c.o.d"
  "CMakeFiles/lowbit.dir/cli/cmd_tokenize.c.o"
  "CMakeFiles/lowbit.dir/cli/cmd_tokenize.c.o.d"
  "CMakeFiles/lowbit.dir/cli/main.c.o"
  "CMakeFiles/lowbit.dir/cli/main.c.o.d"
  "lowbit"
  "lowbit.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/lowbit.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
