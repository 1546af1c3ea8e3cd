# find_package(lowbit): the targets lowbit::lowbit (liblowbit.so) and lowbit::lowbit_static.
include(CMakeFindDependencyMacro)
find_dependency(OpenMP)
include("${CMAKE_CURRENT_LIST_DIR}/lowbitTargets.cmake")
