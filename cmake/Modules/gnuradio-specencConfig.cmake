find_package(PkgConfig)

PKG_CHECK_MODULES(PC_GR_SPECENC gnuradio-specenc)

FIND_PATH(
    GR_SPECENC_INCLUDE_DIRS
    NAMES gnuradio/specenc/api.h
    HINTS $ENV{SPECENC_DIR}/include
        ${PC_SPECENC_INCLUDEDIR}
    PATHS ${CMAKE_INSTALL_PREFIX}/include
          /usr/local/include
          /usr/include
)

FIND_LIBRARY(
    GR_SPECENC_LIBRARIES
    NAMES gnuradio-specenc
    HINTS $ENV{SPECENC_DIR}/lib
        ${PC_SPECENC_LIBDIR}
    PATHS ${CMAKE_INSTALL_PREFIX}/lib
          ${CMAKE_INSTALL_PREFIX}/lib64
          /usr/local/lib
          /usr/local/lib64
          /usr/lib
          /usr/lib64
          )

include("${CMAKE_CURRENT_LIST_DIR}/gnuradio-specencTarget.cmake")

INCLUDE(FindPackageHandleStandardArgs)
FIND_PACKAGE_HANDLE_STANDARD_ARGS(GR_SPECENC DEFAULT_MSG GR_SPECENC_LIBRARIES GR_SPECENC_INCLUDE_DIRS)
MARK_AS_ADVANCED(GR_SPECENC_LIBRARIES GR_SPECENC_INCLUDE_DIRS)
