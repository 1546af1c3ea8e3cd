file(REMOVE_RECURSE
  "liblowbit.a"
)
