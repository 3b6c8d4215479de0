#!/bin/sh
# rc_bpf_check.sh CLANG OBJDUMP SRC INCLUDE: compile SRC for BPF as the XDP program
# compiles the shared headers, then refuse division or modulo by a register, which
# restricted C forbids (some JITs lack it, and the DPDK fast path must not pay it).
set -eu
clang=$1 objdump=$2 src=$3 inc=$4
obj=$(mktemp /tmp/qsteer-rc-XXXXXX.o)
trap 'rm -f "$obj"' EXIT
"$clang" -target bpf -O2 -Wall -Werror -ffreestanding -nostdinc -I "$inc" -c "$src" -o "$obj"
if "$objdump" -d "$obj" | grep -E '[rw][0-9]+ [/%]= [rw][0-9]+'; then
	echo "rc: division or modulo by a variable in restricted C (above)" >&2
	exit 1
fi
echo "rc: $(basename "$src") compiles for BPF with no division by a variable"
