# The dependencies of the header-only target, found the same way in the build tree and (through
# hyvideoConfig.cmake) in a consumer of the installed package.
include(GNUInstallDirs)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3 REQUIRED)
find_package(fmt REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)
if(HYVIDEO_USE_ONEDNN)
  find_package(dnnl QUIET)
endif()

function(hyvideo_link_dependencies target)
  target_link_libraries(${target} INTERFACE Eigen3::Eigen nlohmann_json::nlohmann_json fmt::fmt
                                             OpenMP::OpenMP_CXX Threads::Threads)
  if(HYVIDEO_USE_ONEDNN AND TARGET DNNL::dnnl)
    target_link_libraries(${target} INTERFACE DNNL::dnnl)
    target_compile_definitions(${target} INTERFACE HYVIDEO_HAS_ONEDNN=1)
  endif()
endfunction()
