# Empty dependencies file for lowbit_lib.
# This may be replaced when dependencies are built.
