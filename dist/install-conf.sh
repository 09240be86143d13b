#!/bin/sh
# meson install script: the example configuration becomes DIR/dvipa.conf
# only where there is none, so that reinstalling never overwrites what an
# administrator wrote. Usage: install-conf.sh EXAMPLE DIR (DIR absolute;
# DESTDIR, set by meson install, is honoured).
set -eu
example=$1
dir=${DESTDIR:-}$2
install -d -m 0755 "$dir"
if [ -e "$dir/dvipa.conf" ]; then
	echo "install-conf: keeping $dir/dvipa.conf (example not copied)"
else
	install -m 0644 "$example" "$dir/dvipa.conf"
	echo "install-conf: $dir/dvipa.conf from $example"
fi
