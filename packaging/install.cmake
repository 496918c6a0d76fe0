# Run by `cmake --install` (and CPack) after the binary and lualib/: works out
# the install-time paths and installs the example config and command, the
# empty keys folder, the service's environment file, the systemd unit and the
# man page, each written for those paths. The variables it reads are set by
# the install(CODE) in packaging/CMakeLists.txt.

set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" prefix "${prefix}")

# GNUInstallDirs' rule, applied to the prefix of this install: /usr (and /)
# keep their configuration in /etc, /opt/X in /etc/opt/X, others in PREFIX/etc.
if(IS_ABSOLUTE "${CLIQHOST_SYSCONFDIR}")
  set(etc "${CLIQHOST_SYSCONFDIR}")
elseif(prefix STREQUAL "/usr" OR prefix STREQUAL "")
  set(etc "/${CLIQHOST_SYSCONFDIR}")
elseif(prefix MATCHES "^/opt/")
  set(etc "/${CLIQHOST_SYSCONFDIR}${prefix}")
else()
  set(etc "${prefix}/${CLIQHOST_SYSCONFDIR}")
endif()
if(CLIQHOST_SYSTEMD_UNIT_DIR)
  set(unit_dir "${CLIQHOST_SYSTEMD_UNIT_DIR}")
elseif(prefix STREQUAL "/usr" OR prefix STREQUAL "")
  set(unit_dir "/lib/systemd/system")
else()
  set(unit_dir "${prefix}/lib/systemd/system")
endif()
# An absolute CMAKE_INSTALL_<dir> stays as given; a relative one is under the prefix.
foreach(d BINDIR DATADIR DOCDIR MANDIR)
  if(IS_ABSOLUTE "${CLIQHOST_${d}}")
    set(full_${d} "${CLIQHOST_${d}}")
  else()
    set(full_${d} "${prefix}/${CLIQHOST_${d}}")
  endif()
endforeach()

# The names the templates use.
set(CMAKE_INSTALL_FULL_BINDIR "${full_BINDIR}")
set(CMAKE_INSTALL_FULL_DOCDIR "${full_DOCDIR}")
set(CLIQHOST_LUALIB_INSTALL_DIR "${full_DATADIR}/cliqhost/lualib")
set(CLIQHOST_CONFIG_FILE "${etc}/cliqhost/cliqhost.lua")
set(CLIQHOST_SCRIPTS_DIR "${etc}/cliqhost/scripts")
set(CLIQHOST_KEYS_DIR "${etc}/cliqhost/keys")
set(CLIQHOST_ENV_FILE "${etc}/default/cliqhost")

set(src "${CLIQHOST_SOURCE_PACKAGING}")
set(tmp "${CLIQHOST_INSTALL_TMP}")
file(MAKE_DIRECTORY "${tmp}")
configure_file("${src}/cliqhost.lua.in" "${tmp}/cliqhost.lua" @ONLY)
configure_file("${src}/cliqhost.service.in" "${tmp}/cliqhost.service" @ONLY)
configure_file("${src}/cliqhost.1.in" "${tmp}/cliqhost.1" @ONLY)
configure_file("${src}/changelog" "${tmp}/changelog.Debian" COPYONLY)
# Debian's way: gzip at maximum compression, without a name or time stamp.
foreach(f cliqhost.1 changelog.Debian)
  execute_process(COMMAND gzip -9nc "${tmp}/${f}" OUTPUT_FILE "${tmp}/${f}.gz"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip ${tmp}/${f} failed: ${rc}")
  endif()
endforeach()

# file(INSTALL) puts DESTDIR in front of absolute destinations itself.
set(dest "$ENV{DESTDIR}")
set(rw OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${tmp}/cliqhost.lua" DESTINATION "${etc}/cliqhost" FILE_PERMISSIONS ${rw})
file(INSTALL "${src}/scripts" DESTINATION "${etc}/cliqhost" FILE_PERMISSIONS ${rw})
# Cliq's public key goes here (the config names keys/cliq.pub).
file(MAKE_DIRECTORY "${dest}${etc}/cliqhost/keys")
# Webhook tokens are secrets: only root (systemd) reads this file.
file(INSTALL "${src}/default" DESTINATION "${etc}/default" RENAME cliqhost
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE)
file(INSTALL "${tmp}/cliqhost.service" DESTINATION "${unit_dir}" FILE_PERMISSIONS ${rw})
file(INSTALL "${tmp}/cliqhost.1.gz" DESTINATION "${full_MANDIR}/man1" FILE_PERMISSIONS ${rw})
file(INSTALL "${tmp}/changelog.Debian.gz" DESTINATION "${full_DOCDIR}"
     FILE_PERMISSIONS ${rw})
file(INSTALL "${src}/lintian-overrides" DESTINATION "${full_DATADIR}/lintian/overrides"
     RENAME cliqhost FILE_PERMISSIONS ${rw})
