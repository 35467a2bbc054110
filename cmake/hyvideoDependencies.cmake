# The dependencies of the header-only target, found the same way in the build tree and (through
# hyvideoConfig.cmake) in a consumer of the installed package.
include(GNUInstallDirs)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3 REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)
if(HYVIDEO_USE_ONEDNN)
  find_package(dnnl QUIET)
endif()
# FFmpeg, for video and image I/O (include/hyvideo/io/video.hpp, image.hpp): only the optional
# hyvideo::video target links it, so a program that computes without reading or writing videos needs
# no FFmpeg. FFmpeg ships no CMake package, so pkg-config finds it; IMPORTED_TARGET defines
# PkgConfig::HYVIDEO_FFMPEG with its include directories and libraries. hyvideoConfig.cmake.in defines
# the same target in consumers of the installed package.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(HYVIDEO_FFMPEG QUIET IMPORTED_TARGET libavformat libavcodec libavutil libswscale)
endif()

function(hyvideo_link_dependencies target)
  target_link_libraries(${target} INTERFACE Eigen3::Eigen nlohmann_json::nlohmann_json OpenMP::OpenMP_CXX
                                             Threads::Threads)
  if(HYVIDEO_USE_ONEDNN AND TARGET DNNL::dnnl)
    target_link_libraries(${target} INTERFACE DNNL::dnnl)
    target_compile_definitions(${target} INTERFACE HYVIDEO_HAS_ONEDNN=1)
  endif()
endfunction()

# hyvideo::video: hyvideo with FFmpeg, for io/video.hpp and io/image.hpp. HYVIDEO_HAS_FFMPEG=1 lets
# code that also builds without hyvideo's CMake (a test compiled by hand, say) tell whether the FFmpeg
# libraries are linked.
function(hyvideo_link_video_dependencies target)
  target_link_libraries(${target} INTERFACE PkgConfig::HYVIDEO_FFMPEG)
  target_compile_definitions(${target} INTERFACE HYVIDEO_HAS_FFMPEG=1)
endfunction()
