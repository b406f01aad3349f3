/*
 * test_qemu.c - the QEMU provisioner without booting anything: its QEMU
 * command lines (BIOS, UEFI, direct boot, key credential, seed, extra
 * arguments, accelerator), the cloud-init seed texts, the parsing of
 * QMP's "info usernet", and options refused with a message naming the
 * option. start() checks on this machine (a missing image, a bad work
 * directory) run real host commands but no QEMU.
 */
#include "helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "atex/provisioner.h"
#include "provisioner/qemu_private.h"
#include "util/util.h"

/* The command line as one string, arguments separated by '|'. */
static char *joined(const struct atex_qemu_cmd *c)
{
	struct atex_vec v = ATEX_VEC_INIT;
	struct atex_buf b = ATEX_BUF_INIT;

	assert_int_equal(atex_qemu_argv(&v, c), 0);
	for (size_t i = 0; i < v.len; i++) {
		if (i)
			assert_int_equal(atex_buf_putc(&b, '|'), 0);
		assert_int_equal(atex_buf_puts(&b, v.items[i]), 0);
	}
	atex_vec_free_all(&v, free);
	return atex_buf_detach(&b);
}

static void base_cmd(struct atex_qemu_cmd *c)
{
	memset(c, 0, sizeof(*c));
	c->program = "qemu-system-x86_64";
	c->dir = "/w/atex-vm-0000abcd";
	c->name = "atex-vm-0000abcd";
	c->memory_mib = 1024;
	c->cpus = 2;
	c->disk = true;
	c->net = true;
}

static void has(const char *s, const char *part)
{
	/* abort(): gcc then knows s is not NULL (-Wformat-overflow under
	 * the sanitizers). */
	if (!s)
		abort();
	if (!strstr(s, part))
		fail_msg("\"%s\" not in \"%s\"", part, s);
}

static void lacks(const char *s, const char *part)
{
	if (!s)
		abort();
	if (strstr(s, part))
		fail_msg("\"%s\" in \"%s\"", part, s);
}

static void test_argv_bios(void **state)
{
	struct atex_qemu_cmd c;
	char *s;

	base_cmd(&c);
	s = joined(&c);
	/* The program first, then everything a VM always has. */
	has(s, "qemu-system-x86_64|-name|atex-vm-0000abcd,process=atex-vm-"
	       "0000abcd|");
	has(s, "|-display|none|");
	has(s, "|-accel|tcg,thread=multi|-cpu|max|");
	lacks(s, "kvm");
	has(s, "|-m|1024|-smp|2|");
	has(s, "|-pidfile|/w/atex-vm-0000abcd/qemu.pid|");
	has(s, "|-serial|file:/w/atex-vm-0000abcd/console.log|");
	has(s, "|-chardev|pipe,id=qmp,path=/w/atex-vm-0000abcd/qmp|-mon|"
	       "chardev=qmp,mode=control|");
	has(s, "|-drive|if=virtio,format=qcow2,discard=unmap,"
	       "file=/w/atex-vm-0000abcd/overlay.qcow2|");
	has(s, "|-nic|user,model=virtio-net-pci,restrict=on,"
	       "hostfwd=tcp:127.0.0.1:0-:22|");
	has(s, "|-device|virtio-rng-pci");
	lacks(s, "pflash");
	lacks(s, "-kernel");
	lacks(s, "-smbios");
	lacks(s, "seed.iso");
	lacks(s, "-no-reboot");
	free(s);
	(void)state;
}

static void test_argv_uefi_kvm(void **state)
{
	struct atex_qemu_cmd c;
	char *s;

	base_cmd(&c);
	c.kvm = true;
	/* A comma in a path is doubled: QEMU's option syntax. */
	c.dir = "/w,x/atex-vm-1";
	c.ovmf_code = "/usr/share/OVMF/OVMF_CODE_4M.fd";
	s = joined(&c);
	has(s, "|-accel|kvm|-cpu|host|");
	lacks(s, "tcg");
	has(s, "|-drive|if=pflash,format=raw,unit=0,readonly=on,"
	       "file=/usr/share/OVMF/OVMF_CODE_4M.fd|-drive|"
	       "if=pflash,format=raw,unit=1,file=/w,,x/atex-vm-1/vars.fd|");
	has(s, "file=/w,,x/atex-vm-1/overlay.qcow2");
	has(s, "path=/w,,x/atex-vm-1/qmp|");
	free(s);
	(void)state;
}

static void test_argv_direct_key_seed_extra(void **state)
{
	static const char *const extra[] = {"-machine", "q35", NULL};
	struct atex_qemu_cmd c;
	char *s;

	base_cmd(&c);
	c.kernel = "/img/vmlinuz";
	c.initrd = "/img/initrd.img";
	c.cmdline = "root=/dev/vda rw console=ttyS0";
	c.credential_key = "ssh-ed25519 AAAAC3Nza";
	c.seed = true;
	c.extra = extra;
	s = joined(&c);
	has(s, "|-kernel|/img/vmlinuz|-initrd|/img/initrd.img|-append|"
	       "root=/dev/vda rw console=ttyS0|");
	has(s, "|-smbios|type=11,value=io.systemd.credential:"
	       "ssh.authorized_keys.root=ssh-ed25519 AAAAC3Nza|");
	has(s, "|-drive|if=virtio,format=raw,readonly=on,"
	       "file=/w/atex-vm-0000abcd/seed.iso|");
	/* The caller's arguments come last: they may override ours. */
	assert_non_null(strstr(s, "|-machine|q35"));
	assert_string_equal(strstr(s, "|-machine|q35"), "|-machine|q35");
	free(s);
	(void)state;
}

static void test_argv_probe(void **state)
{
	struct atex_qemu_cmd c;
	char *s;

	base_cmd(&c);
	c.kvm = true;
	c.disk = false;
	c.net = false;
	c.no_reboot = true;
	c.kernel = "/boot/vmlinuz";
	c.cmdline = "console=ttyS0 panic=-1 root=/dev/nonexistent";
	s = joined(&c);
	has(s, "|-no-reboot");
	has(s, "|-kernel|/boot/vmlinuz|-append|console=ttyS0 panic=-1");
	lacks(s, "-initrd");
	lacks(s, "overlay.qcow2");
	lacks(s, "-nic");
	free(s);
	(void)state;
}

static void test_seed(void **state)
{
	char *u = atex_qemu_user_data("root", "ssh-ed25519 AAAA");
	char *m;

	assert_non_null(u);
	assert_int_equal(strncmp(u, "#cloud-config\n", 14), 0);
	has(u, "\ndisable_root: false\n");
	has(u, "\nssh_authorized_keys:\n  - ssh-ed25519 AAAA\n");
	lacks(u, "users:");
	free(u);

	u = atex_qemu_user_data("fedora", "ssh-ed25519 AAAA");
	has(u, "\ndisable_root: false\n");
	has(u, "\nssh_authorized_keys:\n  - ssh-ed25519 AAAA\n");
	has(u, "\nusers:\n  - default\n  - name: fedora\n");
	has(u, "    sudo: ALL=(ALL) NOPASSWD:ALL\n");
	has(u, "    ssh_authorized_keys:\n      - ssh-ed25519 AAAA\n");
	free(u);

	m = atex_qemu_meta_data("atex-vm-12345678");
	assert_string_equal(m, "instance-id: atex-vm-12345678\n"
			       "local-hostname: atex-vm-12345678\n");
	free(m);
	(void)state;
}

static void test_key_text(void **state)
{
	char *k = atex_qemu_key_text("ssh-ed25519 AAAAC3+/= user@host, x\n");

	assert_string_equal(k, "ssh-ed25519 AAAAC3+/=");
	free(k);
	assert_null(atex_qemu_key_text("-----BEGIN OPENSSH PRIVATE KEY-----"));
	assert_int_equal(atex_error_last_code(), ATEX_EINVAL);
	assert_null(atex_qemu_key_text("ssh-rsa AAA\"A"));
	assert_null(atex_qemu_key_text(""));
	(void)state;
}

static void test_usernet(void **state)
{
	/* What QEMU 7.2 answers, as the JSON string's value. */
	static const char info[] = "VLAN -1 (#net040):\r\n"
				   "  Protocol[State]    FD  Source Address  "
				   "Port   Dest. Address  "
				   "Port RecvQ SendQ\r\n"
				   "  TCP[HOST_FORWARD]  13       127.0.0.1 "
				   "38465       10.0.2.15  "
				   "  22     0     0\r\n";
	static const char two[] = "  Protocol[State]    FD  Source Address  "
				  "Port   Dest. Address  "
				  "Port RecvQ SendQ\n"
				  "  TCP[ESTABLISHED]   20       127.0.0.1 "
				  "38465       10.0.2.15  "
				  "  22     0     0\n"
				  "  TCP[HOST_FORWARD]  13       127.0.0.1  "
				  "8080       10.0.2.15  "
				  "  80     0     0\n"
				  "  TCP[HOST_FORWARD]  14       127.0.0.1 "
				  "40001       10.0.2.15  "
				  "  22     0     0\n";
	int port = 0;

	assert_int_equal(atex_qemu_usernet_port(&port, info), 0);
	assert_int_equal(port, 38465);
	assert_int_equal(atex_qemu_usernet_port(&port, two), 0);
	assert_int_equal(port, 40001);
	assert_int_equal(atex_qemu_usernet_port(&port, "VLAN -1\r\n"),
			 ATEX_ENOTFOUND);
	assert_int_equal(atex_qemu_usernet_port(&port, ""), ATEX_ENOTFOUND);
	assert_int_equal(
		atex_qemu_usernet_port(&port, "  TCP[HOST_FORWARD] 13 x"),
		ATEX_ENOTFOUND);
	(void)state;
}

/* new() refuses `o` with a message containing `part`. */
static void refused(const struct atex_qemu_provisioner_options *o,
		    const char *part)
{
	atex_provisioner *p = NULL;

	assert_int_equal(atex_qemu_provisioner_new(&p, o), ATEX_EINVAL);
	assert_null(p);
	has(atex_error_last(), part);
}

static void test_bad_options(void **state)
{
	struct atex_qemu_provisioner_options o =
		ATEX_QEMU_PROVISIONER_OPTIONS_INIT;
	struct atex_ssh_options host = ATEX_SSH_OPTIONS_INIT;
	static const char *const none[] = {NULL};

	refused(NULL, "option image");
	refused(&o, "option image");
	o.image = "";
	refused(&o, "option image");
	o.image = "/img/disk.qcow2";
	o.version = 7;
	refused(&o, "options version 7");
	o.version = ATEX_QEMU_PROVISIONER_OPTIONS_VERSION;
#define TRY(field, value, part)                                                \
	do {                                                                   \
		struct atex_qemu_provisioner_options b = o;                    \
		b.field = value;                                               \
		refused(&b, part);                                             \
	} while (0)
	TRY(count, -1, "option count");
	TRY(memory_mib, 12, "option memory_mib");
	TRY(cpus, -2, "option cpus");
	TRY(accel, (enum atex_vm_accel)9, "option accel");
	TRY(firmware, (enum atex_vm_firmware)5, "option firmware");
	TRY(key, 8, "option key");
	TRY(boot_timeout_s, -1, "option boot_timeout_s");
	TRY(boot_attempts, -3, "option boot_attempts");
	TRY(initrd, "/img/initrd",
	    "options initrd and cmdline need option kernel");
	TRY(cmdline, "quiet", "option kernel");
	TRY(kernel, "/img/vm\nlinuz", "option kernel");
	TRY(workdir, "", "option workdir");
	TRY(user, "-oProxyCommand=x", "option user");
	TRY(user, "a b", "option user");
	TRY(image, "/img/a\tb", "option image");
	TRY(host, &host, "option host");
#undef TRY
	/* A bad host address is the ssh connection's check, named too. */
	host.host = "-oProxyCommand=evil";
	o.host = &host;
	refused(&o, "option host");
	o.host = NULL;
	o.qemu_args = none;
	{
		atex_provisioner *p = NULL;

		assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
		assert_string_equal(atex_provisioner_name(p),
				    "qemu:/img/disk.qcow2");
		/* Not started: nothing to do yet. */
		assert_int_equal(atex_provisioner_provision(p, 1), ATEX_EINVAL);
		atex_provisioner_free(p);
	}
	(void)state;
}

/* start() checks the host (here) before any VM: a missing image, a work
 * directory that is no directory, each named. */
static void test_start_checks(void **state)
{
	struct atex_qemu_provisioner_options o =
		ATEX_QEMU_PROVISIONER_OPTIONS_INIT;
	char *dir = tmpdir_new();
	char path[4096], work[4096];
	atex_provisioner *p = NULL;

	snprintf(path, sizeof(path), "%s/missing.qcow2", dir);
	o.image = path;
	o.workdir = dir;
	o.accel = ATEX_VM_ACCEL_TCG;
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_not_equal(atex_provisioner_start(p), 0);
	has(atex_error_last(), "missing.qcow2: no readable file on the host");
	atex_provisioner_free(p);

	/* A raw image is fine; a file as the work directory is not. */
	snprintf(path, sizeof(path), "%s/disk.raw", dir);
	write_file(dir, "disk.raw", "not really a disk");
	snprintf(work, sizeof(work), "%s/disk.raw", dir);
	o.workdir = work;
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_not_equal(atex_provisioner_start(p), 0);
	has(atex_error_last(), "work directory");
	has(atex_error_last(), "not a writable directory");
	atex_provisioner_free(p);

	o.workdir = dir;
	o.qemu_program = "no-such-qemu";
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_not_equal(atex_provisioner_start(p), 0);
	has(atex_error_last(), "no-such-qemu: not found on the host");
	atex_provisioner_free(p);

	o.qemu_program = NULL;
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);

	unlink(path);
	rmdir(dir);
	free(dir);
	(void)state;
}

/* A child holding flock on PATH until the returned pipe is closed. */
static pid_t lock_holder(const char *path, int *release)
{
	int ready[2], hold[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_RDONLY);

		if (fd < 0 || flock(fd, LOCK_EX) < 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		close(hold[1]);
		while (read(hold[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release = hold[1];
	return pid;
}

static bool exists_in(const char *dir, const char *name)
{
	char path[8200];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Only the first `atex-qemu-*` entry of `tmp`, or NULL. */
static char *find_qemu_dir(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *e;
	char *found = NULL;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "atex-qemu-", 10) && !found)
			assert_non_null(found = strdup(e->d_name));
	closedir(d);
	return found;
}

/* The sweep of private directories a killed atex left: a free lock goes,
 * a held one stays, a lock-less one goes only when a day old, and nothing
 * outside the pattern or behind a symlink is touched. start() holds the
 * lock of its own directory until stop(). */
static void test_sweep(void **state)
{
	struct atex_qemu_provisioner_options o =
		ATEX_QEMU_PROVISIONER_OPTIONS_INIT;
	char *tmp = tmpdir_new(), *mine;
	char path[4096], image[4096];
	struct timeval old[2] = {{time(NULL) - 2 * 86400, 0},
				 {time(NULL) - 2 * 86400, 0}};
	atex_provisioner *p = NULL;
	const char *saved = getenv("TMPDIR");
	char *saved_tmp = saved ? strdup(saved) : NULL;
	int release, status;
	pid_t pid;

	write_file(tmp, "atex-qemu-free01/lock", "");
	write_file(tmp, "atex-qemu-free01/id", "key");
	write_file(tmp, "atex-qemu-held01/lock", "");
	write_file(tmp, "atex-qemu-held01/id", "key");
	write_file(tmp, "atex-qemu-new001/id", "no lock, fresh");
	write_file(tmp, "atex-qemu-old001/id", "no lock, old");
	snprintf(path, sizeof(path), "%s/atex-qemu-old001", tmp);
	assert_int_equal(utimes(path, old), 0);
	write_file(tmp, "atex-ssh-free01/lock", "");
	write_file(tmp, "atex-qemu-long-free/lock", "");
	write_file(tmp, "target/lock", "");
	snprintf(path, sizeof(path), "%s/target", tmp);
	snprintf(image, sizeof(image), "%s/atex-qemu-link01", tmp);
	assert_int_equal(symlink(path, image), 0);
	snprintf(path, sizeof(path), "%s/atex-qemu-held01/lock", tmp);
	pid = lock_holder(path, &release);

	assert_int_equal(atex_qemu_sweep_tmp(tmp), 2);
	assert_false(exists_in(tmp, "atex-qemu-free01"));
	assert_true(exists_in(tmp, "atex-qemu-held01/id"));
	assert_true(exists_in(tmp, "atex-qemu-new001/id"));
	assert_false(exists_in(tmp, "atex-qemu-old001"));
	assert_true(exists_in(tmp, "atex-ssh-free01/lock"));
	assert_true(exists_in(tmp, "atex-qemu-long-free/lock"));
	assert_true(exists_in(tmp, "target/lock"));
	assert_true(exists_in(tmp, "atex-qemu-link01"));

	/* The holder dies (as a SIGKILLed atex would): its lock is free. */
	close(release);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_int_equal(atex_qemu_sweep_tmp(tmp), 1);
	assert_false(exists_in(tmp, "atex-qemu-held01"));

	/* start() sweeps, then makes its own directory, locked. */
	tree_remove(tmp);
	tmp = tmpdir_new();
	write_file(tmp, "atex-qemu-free02/lock", "");
	write_file(tmp, "disk.raw", "not really a disk");
	snprintf(image, sizeof(image), "%s/disk.raw", tmp);
	o.image = image;
	o.workdir = tmp;
	o.accel = ATEX_VM_ACCEL_TCG;
	setenv("TMPDIR", tmp, 1);
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_false(exists_in(tmp, "atex-qemu-free02"));
	mine = find_qemu_dir(tmp);
	assert_non_null(mine);
	snprintf(path, sizeof(path), "%s/lock", mine);
	assert_true(exists_in(tmp, path));
	assert_int_equal(atex_qemu_sweep_tmp(tmp), 0);
	assert_true(exists_in(tmp, mine));
	assert_int_equal(atex_provisioner_stop(p), 0);
	assert_false(exists_in(tmp, mine));
	atex_provisioner_free(p);
	if (saved_tmp)
		setenv("TMPDIR", saved_tmp, 1);
	else
		unsetenv("TMPDIR");

	free(mine);
	free(saved_tmp);
	tree_remove(tmp);
	(void)state;
}

static void clean_is(const char *raw, int lines, int width, const char *want)
{
	char *got = atex_qemu_console_clean(raw, strlen(raw), lines, width);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* The console's end as an error quotes it: real lines, the last ones
 * that say something, without colours, cursor moves or control
 * characters, each cut to a readable width. */
static void test_console_clean(void **state)
{
	struct atex_buf raw = ATEX_BUF_INIT;
	char *got;

	/* A systemd status line: colours, \r\n endings. */
	clean_is("[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mgetty\x1b[0m."
		 "\r\n",
		 15, 200, "[  OK  ] Started getty.");
	/* Cursor moves, an OSC title, a charset switch, backspaces, a
	 * bell; blank and blank-after-cleanup lines dropped; tabs. */
	clean_is("\x1b[2J\x1b[H\x1b]0;title\x07\x1b(Bboot\b\b\bxx\a:\tok\r\n"
		 "\r\n   \r\n\x1b[0m\r\n\x1b[?25l\r\nlogin: ",
		 15, 200, "bootxx: ok\nlogin:");
	/* Bytes that are no UTF-8 become '?', UTF-8 is kept; an escape
	 * cut off at the end disappears. */
	clean_is("caf\xc3\xa9 \xff\n\x1b[0;3", 15, 200, "caf\xc3\xa9 ?");
	/* Only the last lines; the width in characters, not bytes. */
	clean_is("1\n2\n\n3\n4\n", 2, 200, "3\n4");
	clean_is("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\nabcd\n", 15, 3,
		 "\xc3\xa9\xc3\xa9\xc3\xa9 [...]\nabc [...]");
	/* Empty, or nothing but escapes and blanks. */
	clean_is("", 15, 200, "");
	clean_is("\x1b[0m\r\n \r\n\b", 15, 200, "");

	/* A long console: 15 lines of at most 200 characters. */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(atex_buf_printf(&raw, "\x1b[1mline %d ", i),
				 0);
		for (int j = 0; j < 50; j++)
			assert_int_equal(atex_buf_puts(&raw, "0123456789"), 0);
		assert_int_equal(atex_buf_puts(&raw, "\r\n"), 0);
	}
	got = atex_qemu_console_clean(raw.ptr, raw.len, 15, 200);
	assert_non_null(got);
	assert_true(strncmp(got, "line 85 ", 8) == 0);
	assert_non_null(strstr(got, "\nline 99 "));
	assert_null(strstr(got, "line 84"));
	for (char *line = got; line; line = strchr(line, '\n')) {
		char *end;

		line += *line == '\n';
		end = strchrnul(line, '\n');
		assert_true(end - line == 200 + 6);
		assert_true(strncmp(end - 6, " [...]", 6) == 0);
		if (!*end)
			break;
	}
	free(got);
	atex_buf_free(&raw);
	(void)state;
}

/* Boot attempts the provisioner logged ("booting ... (attempt N of M)"). */
static int boots_logged;

static void count_boots(int level, const char *component, const char *msg,
			void *userdata)
{
	if (strstr(msg, ": booting atex-vm-"))
		__atomic_add_fetch(&boots_logged, 1, __ATOMIC_SEQ_CST);
	(void)level;
	(void)component;
	(void)userdata;
}

/* A failure before QEMU starts (qemu-img cannot make the overlay: the
 * image's backing file is gone) is the same on every attempt: it fails
 * after one, naming the cause. No VM boots here. */
static void test_no_retry_before_boot(void **state)
{
	struct atex_qemu_provisioner_options o =
		ATEX_QEMU_PROVISIONER_OPTIONS_INIT;
	char *dir = tmpdir_new();
	char cmd[8400], image[4200];
	atex_provisioner *p = NULL;
	atex_remote *r = NULL;
	const char *msg;

	snprintf(cmd, sizeof(cmd),
		 "cd %s && qemu-img create -q -f qcow2 back.qcow2 16M && "
		 "qemu-img create -q -f qcow2 -b %s/back.qcow2 -F qcow2 "
		 "base.qcow2 && rm back.qcow2",
		 dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(image, sizeof(image), "%s/base.qcow2", dir);
	o.image = image;
	o.workdir = dir;
	o.accel = ATEX_VM_ACCEL_TCG;
	o.boot_attempts = 3;
	boots_logged = 0;
	atex_log_set_handler(count_boots, NULL);
	atex_log_set_level(ATEX_LOG_INFO);
	assert_int_equal(atex_qemu_provisioner_new(&p, &o), 0);
	assert_int_equal(atex_provisioner_start(p), 0);
	assert_int_equal(atex_provisioner_provision(p, 1), 0);
	assert_int_equal(atex_provisioner_get_remote(&r, p, 60000),
			 ATEX_EEXTERNAL);
	assert_null(r);
	msg = atex_error_last();
	has(msg, "back.qcow2");
	lacks(msg, "attempt");
	assert_int_equal(__atomic_load_n(&boots_logged, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(atex_provisioner_stop(p), 0);
	atex_provisioner_free(p);
	atex_log_set_handler(NULL, NULL);
	atex_log_set_level(ATEX_LOG_WARNING);
	tree_remove(dir);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv_bios),
		cmocka_unit_test(test_argv_uefi_kvm),
		cmocka_unit_test(test_argv_direct_key_seed_extra),
		cmocka_unit_test(test_argv_probe),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_key_text),
		cmocka_unit_test(test_usernet),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_start_checks),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_console_clean),
		cmocka_unit_test(test_no_retry_before_boot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
