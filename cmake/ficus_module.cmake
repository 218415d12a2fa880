# ficus_module(NAME DEPS ...): one folder under src/ = one static library `ficus_NAME`
# built from every .cc in that folder (and its internal/ subfolder).
function(ficus_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc ${CMAKE_CURRENT_SOURCE_DIR}/internal/*.cc)
  if(srcs)
    add_library(ficus_${name} STATIC ${srcs})
    target_include_directories(ficus_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(ficus_${name} PUBLIC ${M_DEPS})
  else()  # header-only so far
    add_library(ficus_${name} INTERFACE)
    target_include_directories(ficus_${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(ficus_${name} INTERFACE ${M_DEPS})
  endif()
endfunction()

# ficus_test(MODULE DEPS ...): tests/MODULE/*_test.cc -> one GoogleTest binary, one ctest entry.
function(ficus_test module)
  cmake_parse_arguments(T "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  if(NOT srcs)
    return()
  endif()
  add_executable(ficus_${module}_test ${srcs})
  target_link_libraries(ficus_${module}_test PRIVATE ficus_${module} ${T_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  # Tests that read files of the source tree (examples/) find it here, not through __FILE__,
  # which a compiler cache or a packager's build may make relative.
  target_compile_definitions(ficus_${module}_test PRIVATE FICUS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME unit.${module} COMMAND ficus_${module}_test)
endfunction()
