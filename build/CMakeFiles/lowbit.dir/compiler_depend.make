# Empty compiler generated dependencies file for lowbit.
# This may be replaced when dependencies are built.
