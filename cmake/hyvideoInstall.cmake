# Install rules and the CMake package, so that a downstream project can write
#   find_package(hyvideo CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE hyvideo::hyvideo)
# after `cmake --install` (and, for video and image files, find_package(hyvideo CONFIG REQUIRED
# COMPONENTS video) and hyvideo::video, where FFmpeg was found). tests/consumer builds such a project both from the install and through
# add_subdirectory.
include(CMakePackageConfigHelpers)

# The package files are architecture-independent apart from what find_dependency() resolves on the
# consumer's machine, so they go where header-only packages put them (like Eigen3 and nlohmann_json).
set(HYVIDEO_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/hyvideo" CACHE STRING
    "Where hyvideoConfig.cmake is installed, relative to the prefix")
mark_as_advanced(HYVIDEO_INSTALL_CMAKEDIR)

# hyvideoConfig.cmake.in has to re-find every package whose imported target hyvideo links, or the
# exported target would name targets the consumer does not have. Fail here, at configure time, rather
# than in a consumer's build when a dependency is added to hyvideoDependencies.cmake and not there.
set(_hyvideo_found_by_config Eigen3::Eigen nlohmann_json::nlohmann_json OpenMP::OpenMP_CXX Threads::Threads
                             DNNL::dnnl)
get_target_property(_hyvideo_links hyvideo INTERFACE_LINK_LIBRARIES)
foreach(_lib IN LISTS _hyvideo_links)
  if(_lib MATCHES "::" AND NOT _lib IN_LIST _hyvideo_found_by_config)
    message(FATAL_ERROR "hyvideo links ${_lib}, which cmake/hyvideoConfig.cmake.in does not find: add a "
                        "find_dependency() for its package there and the target to the list in "
                        "${CMAKE_CURRENT_LIST_FILE}")
  endif()
endforeach()
unset(_hyvideo_found_by_config)

# Record the oneDNN decision of this build: the exported target carries DNNL::dnnl and
# HYVIDEO_HAS_ONEDNN=1 only if this build used oneDNN, and the config must then find it again.
if("DNNL::dnnl" IN_LIST _hyvideo_links)
  set(HYVIDEO_HAS_ONEDNN ON)
else()
  set(HYVIDEO_HAS_ONEDNN OFF)
endif()
unset(_hyvideo_links)

install(TARGETS hyvideo EXPORT hyvideoTargets)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hyvideo DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT hyvideoTargets
        NAMESPACE hyvideo::
        DESTINATION ${HYVIDEO_INSTALL_CMAKEDIR})
# hyvideo::video in its own export set, which the config loads only where FFmpeg is found again.
if(TARGET hyvideo_video)
  install(TARGETS hyvideo_video EXPORT hyvideoVideoTargets)
  install(EXPORT hyvideoVideoTargets
          NAMESPACE hyvideo::
          DESTINATION ${HYVIDEO_INSTALL_CMAKEDIR})
endif()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/hyvideoConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/hyvideoConfig.cmake
                              INSTALL_DESTINATION ${HYVIDEO_INSTALL_CMAKEDIR})
# 0.x releases may break the API in any minor version, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/hyvideoConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion
                                 ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/hyvideoConfig.cmake ${PROJECT_BINARY_DIR}/hyvideoConfigVersion.cmake
        DESTINATION ${HYVIDEO_INSTALL_CMAKEDIR})
