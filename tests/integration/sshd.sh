# sshd.sh - a private OpenSSH server on 127.0.0.1 for shell tests: sourced,
# not run. sshd_start makes host and user keys in a new directory, starts
# sshd -D on a free port and waits until it accepts; it sets SSHD_DIR,
# SSHD_PORT, SSHD_KEY (the user's private key), SSH_TARGET
# (root@127.0.0.1:PORT) and SSH_ATEX (the atex provisioner options for it,
# an array). sshd_stop kills it and removes the directory.
# MaxSessions stays at sshd's default (10). SSHD_EXTRA_CONFIG, when set
# before sshd_start, is appended to the server's configuration (lines such
# as "SetEnv PATH=..."). SSHD_SHARED_KEY, when set, is the user key to
# use (made when missing): several servers then take one --identity.

sshd_free_port() {
	# A port nobody listens on, below the kernel's ephemeral range
	# (ip_local_port_range, 32768 up): a port there may be any client
	# socket's, which no probe sees, and sshd's bind then fails.
	local low=20000 high
	high=$(($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
		echo 32768) - 1))
	[ "$high" -gt "$low" ] || high=60000
	while :; do
		port=$(shuf -i "$low-$high" -n 1)
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

# sshd_start: up to three tries, each on another free port (a port found
# free may be taken before sshd binds it).
sshd_start() {
	local try
	for try in 1 2 3; do
		sshd_start_once && return 0
		grep -q "Address already in use" "$SSHD_DIR/sshd.log" 2>/dev/null ||
			return 1
		echo "sshd.sh: port $SSHD_PORT taken meanwhile, another" >&2
		sshd_stop
	done
	return 1
}

sshd_start_once() {
	SSHD_DIR=$(mktemp -d /tmp/atex-sshd-XXXXXX)
	SSHD_KEY=${SSHD_SHARED_KEY:-$SSHD_DIR/user_key}
	SSHD_PORT=$(sshd_free_port)
	SSH_TARGET=root@127.0.0.1:$SSHD_PORT
	SSH_ATEX=(--ssh "$SSH_TARGET" --identity "$SSHD_KEY"
		--ssh-option StrictHostKeyChecking=no
		--ssh-option UserKnownHostsFile=/dev/null)
	mkdir -p /run/sshd
	ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/host_key" || return 1
	if [ ! -f "$SSHD_KEY" ]; then
		ssh-keygen -q -t ed25519 -N '' -f "$SSHD_KEY" || return 1
	fi
	cat >"$SSHD_DIR/sshd_config" <<-CONF
		ListenAddress 127.0.0.1
		Port $SSHD_PORT
		HostKey $SSHD_DIR/host_key
		AuthorizedKeysFile $SSHD_KEY.pub
		PidFile $SSHD_DIR/sshd.pid
		UsePAM no
		StrictModes no
		PermitRootLogin yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
	CONF
	if [ -n "${SSHD_EXTRA_CONFIG:-}" ]; then
		printf '%s\n' "$SSHD_EXTRA_CONFIG" >>"$SSHD_DIR/sshd_config"
	fi
	sshd_bin=$(command -v sshd || echo /usr/sbin/sshd)
	if [ ! -x "$sshd_bin" ]; then
		echo "sshd.sh: no sshd (install openssh-server)" >&2
		return 1
	fi
	"$sshd_bin" -D -f "$SSHD_DIR/sshd_config" -E "$SSHD_DIR/sshd.log" &
	SSHD_PID=$!
	i=0
	while ! (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$SSHD_PID" 2>/dev/null; then
			echo "sshd.sh: sshd did not start:" >&2
			cat "$SSHD_DIR/sshd.log" >&2
			return 1
		fi
		sleep 0.1
	done
}

sshd_stop() {
	[ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null
	[ -n "${SSHD_PID:-}" ] && wait "$SSHD_PID" 2>/dev/null
	[ -n "${SSHD_DIR:-}" ] && rm -rf "$SSHD_DIR"
	SSHD_PID=
}
