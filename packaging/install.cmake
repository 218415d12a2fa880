# install(SCRIPT) part of packaging/CMakeLists.txt: the files whose place depends on the install
# prefix known only at install time (`cmake --install --prefix`, or /usr when cpack builds the
# .deb). As GNUInstallDirs does, the config goes to /etc when the prefix is /usr, else to
# PREFIX/etc; the systemd unit names the binary and config where they were installed.
# FICUS_PACKAGING_DIR is set by the install(CODE) line before this script.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(etc "/etc")
else()
  set(etc "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(FICUS_BINDIR "${CMAKE_INSTALL_PREFIX}/bin")
set(FICUS_DOCDIR "${CMAKE_INSTALL_PREFIX}/share/doc/ficus")
set(FICUS_CONFIG "${etc}/ficus/ficus.yaml")
file(INSTALL DESTINATION "${etc}/ficus" TYPE FILE FILES "${FICUS_PACKAGING_DIR}/ficus.yaml")
set(unit "${FICUS_BINARY_DIR}/ficus.service")
configure_file("${FICUS_PACKAGING_DIR}/ficus.service.in" "${unit}" @ONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE FILES "${unit}")
