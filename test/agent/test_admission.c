/*
 * test_admission.c - qsteer-agent's --admission and --starve-ms (and the config
 * keys admission, starve_ms), through the program itself on loopback.
 *
 * Order: four low-priority requests and then one high-priority one reach an agent
 * that runs one sequence at a time (--batching fixed:1). With priority admission
 * the high one is admitted first; with the default it is admitted last. The order
 * must not depend on how fast this machine is, so the agent is stopped (SIGSTOP)
 * while the five datagrams are sent and continued after: it then reads all five
 * in one burst, before its first iteration, and the order is its scheduler's
 * alone. Readiness is its first report (sent from its loop, so its listening
 * socket is bound); every wait has a backstop that only a stuck agent reaches.
 *
 * Refusals: bad values of the options and keys, a starvation bound without
 * priority admission, and priority admission with the engine executor, each with
 * exit status 2 and a message naming the option or key and the value.
 *
 * usage: test-agent-admission QSTEER_AGENT
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "qsteer/agent_wire.h"
#include "qsteer/clock.h"
#include "qsteer/wire.h"

/* Backstops only a stuck agent reaches (the machine may be heavily loaded). */
#define BACKSTOP_S 60
#define N_LOW	   4
#define HIGH_ID	   900

static const char *agent_exe;
static char tmpdir[64];
/* The agent running now, if any: a failed check leaves the test function at once,
 * and a stopped agent must not outlive it (kill_child). */
static pid_t child;

static int
udp_bound(uint16_t *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (void *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (void *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Start the agent with args (NULL-ended after argv[0]), its output to log. */
static pid_t
spawn(char *const args[], const char *log)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(agent_exe, args);
		_exit(127);
	}
	child = pid;
	return pid;
}

/* Its exit status; killed (and the test failed) at the backstop. */
static int
reap(pid_t pid)
{
	uint64_t deadline = qs_mono_ns() + BACKSTOP_S * 1000000000ull;
	int st;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (qs_mono_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("qsteer-agent still running after %d s", BACKSTOP_S);
		}
		usleep(10000);
	}
	child = 0;
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	fclose(f);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* ---- the order of admission --------------------------------------------------- */

static void
send_req(int fd, const struct sockaddr_in *to, uint64_t id, uint8_t priority)
{
	uint8_t buf[QS_QRP_HDR_LEN + 16];
	struct qs_qrp_hdr h;

	memset(buf, 0, sizeof(buf));
	memset(&h, 0, sizeof(h));
	h.type = QS_QRP_T_REQUEST;
	h.flags = QS_QRP_F_LAST;
	h.request_id = id;
	h.prompt_tokens = 16;
	h.max_new_tokens = 2;
	h.priority = priority;
	qs_qrp_write_hdr(buf, &h);
	assert_int_equal(sendto(fd, buf, sizeof(buf), 0, (const void *)to, sizeof(*to)),
			 (ssize_t)sizeof(buf));
}

/*
 * Run the agent with extra (NULL-ended) and return where the high-priority
 * request's first token came among the five (0: first).
 */
static int
high_position(const char *const extra[])
{
	char log[128], lport_s[32], rport_s[32];
	char *args[32];
	int n = 0, cfd, rfd, lfd, status, pos = -1, firsts = 0, dones = 0;
	uint16_t lport, rport, cport;
	struct sockaddr_in to;
	uint8_t buf[512];
	uint64_t deadline;
	pid_t pid;

	/* the agent's port: picked by the kernel, then freed for the agent */
	lfd = udp_bound(&lport);
	close(lfd);
	rfd = udp_bound(&rport);
	cfd = udp_bound(&cport);
	snprintf(lport_s, sizeof(lport_s), "127.0.0.1:%u", lport);
	snprintf(rport_s, sizeof(rport_s), "127.0.0.1:%u", rport);
	snprintf(log, sizeof(log), "%s/order.log", tmpdir);
	args[n++] = (char *)"qsteer-agent";
	args[n++] = (char *)"--listen";
	args[n++] = lport_s;
	args[n++] = (char *)"--report-to";
	args[n++] = rport_s;
	args[n++] = (char *)"--report-interval-ms";
	args[n++] = (char *)"5";
	args[n++] = (char *)"--batching";
	args[n++] = (char *)"fixed:1";
	args[n++] = (char *)"--max-requests";
	args[n++] = (char *)"5";
	args[n++] = (char *)"--duration";
	args[n++] = (char *)"60";
	for (int i = 0; extra[i]; i++)
		args[n++] = (char *)extra[i];
	args[n] = NULL;
	pid = spawn(args, log);

	/* ready: its loop runs, so its socket is bound */
	deadline = qs_mono_ns() + BACKSTOP_S * 1000000000ull;
	for (;;) {
		struct pollfd p = {rfd, POLLIN, 0};

		if (poll(&p, 1, 100) > 0 && recv(rfd, buf, sizeof(buf), 0) > 0)
			break;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			read_file(log, (char *)buf, sizeof(buf));
			fail_msg("qsteer-agent exited before its first report: %s", buf);
		}
		if (qs_mono_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("no report from qsteer-agent in %d s", BACKSTOP_S);
		}
	}
	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	assert_true(WIFSTOPPED(status));
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons(lport);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < N_LOW; i++)
		send_req(cfd, &to, 100 + (uint64_t)i, 0);
	send_req(cfd, &to, HIGH_ID, 3);
	assert_int_equal(kill(pid, SIGCONT), 0);

	deadline = qs_mono_ns() + BACKSTOP_S * 1000000000ull;
	while (dones < N_LOW + 1 && qs_mono_ns() < deadline) {
		struct pollfd p[2] = {{cfd, POLLIN, 0}, {rfd, POLLIN, 0}};
		struct qs_qra_resp r;
		ssize_t got;

		if (poll(p, 2, 100) <= 0)
			continue;
		if (p[1].revents & POLLIN)
			(void)recv(rfd, buf, sizeof(buf), 0); /* reports: not what is checked */
		if (!(p[0].revents & POLLIN))
			continue;
		got = recv(cfd, buf, sizeof(buf), 0);
		memset(&r, 0, sizeof(r));
		assert_int_equal(qs_qra_parse(buf, (uint32_t)got, &r), QS_QRP_OK);
		if (r.kind == QS_QRA_K_FIRST) {
			if (r.request_id == HIGH_ID)
				pos = firsts;
			firsts++;
		} else {
			assert_int_equal(r.kind, QS_QRA_K_DONE);
			dones++;
		}
	}
	if (dones < N_LOW + 1)
		kill(pid, SIGKILL);
	assert_int_equal(dones, N_LOW + 1);
	assert_int_equal(firsts, N_LOW + 1);
	assert_int_equal(reap(pid), 0); /* --max-requests 5 ends it */
	close(cfd);
	close(rfd);
	return pos;
}

static void
test_default_fcfs(void **state)
{
	const char *const extra[] = {NULL};

	(void)state;
	assert_int_equal(high_position(extra), N_LOW);
}

static void
test_priority_option(void **state)
{
	const char *const extra[] = {"--admission", "priority", "--starve-ms", "60000", NULL};

	(void)state;
	assert_int_equal(high_position(extra), 0);
}

static void
test_priority_config(void **state)
{
	char ini[128];
	const char *const extra[] = {"-c", ini, NULL};

	(void)state;
	snprintf(ini, sizeof(ini), "%s/prio.ini", tmpdir);
	write_file(ini, "[agent]\nadmission = priority\nstarve_ms = 0\n");
	assert_int_equal(high_position(extra), 0);
}

/* The command line overrides the file: fcfs again. */
static void
test_option_over_config(void **state)
{
	char ini[128];
	const char *const extra[] = {"-c", ini, "--admission", "fcfs", NULL};

	(void)state;
	snprintf(ini, sizeof(ini), "%s/prio2.ini", tmpdir);
	write_file(ini, "[agent]\nadmission = priority\n");
	assert_int_equal(high_position(extra), N_LOW);
}

/* ---- refusals ------------------------------------------------------------------ */

/* The agent refuses args (after "--listen 127.0.0.1:0") with status 2 and want in
 * its output. */
static void
refused(const char *const extra[], const char *want)
{
	char log[128], out[2048];
	char *args[16];
	int n = 0;

	snprintf(log, sizeof(log), "%s/refused.log", tmpdir);
	args[n++] = (char *)"qsteer-agent";
	args[n++] = (char *)"--listen";
	args[n++] = (char *)"127.0.0.1:0";
	args[n++] = (char *)"--duration";
	args[n++] = (char *)"5";
	for (int i = 0; extra[i]; i++)
		args[n++] = (char *)extra[i];
	args[n] = NULL;
	assert_int_equal(reap(spawn(args, log)), 2);
	read_file(log, out, sizeof(out));
	if (!strstr(out, want))
		fail_msg("want '%s' in: %s", want, out);
}

static void
test_refusals(void **state)
{
	char ini[128];

	(void)state;
	snprintf(ini, sizeof(ini), "%s/bad.ini", tmpdir);
	refused((const char *const[]){"--admission", "lifo", NULL},
		"qsteer-agent: --admission lifo: fcfs, priority or fair\n");
	refused((const char *const[]){"--admission", "priority", "--starve-ms", "1.5", NULL},
		"qsteer-agent: --starve-ms 1.5: milliseconds, 0 (no bound)..1000000000\n");
	refused((const char *const[]){"--admission", "priority", "--starve-ms", "-1", NULL},
		"qsteer-agent: --starve-ms -1: milliseconds");
	refused((const char *const[]){"--starve-ms", "100", NULL},
		"qsteer-agent: --starve-ms 100: the starvation bound applies to priority "
		"admission only");
	refused((const char *const[]){"--admission", "priority", "--executor", "http://127.0.0.1:9",
				      NULL},
		"qsteer-agent: --admission priority: priority admission is the agent's own "
		"scheduler's");
	refused(
	    (const char *const[]){"--admission", "fair", "--executor", "http://127.0.0.1:9", NULL},
	    "qsteer-agent: --admission fair: priority admission is the agent's own "
	    "scheduler's");
	write_file(ini, "[agent]\nadmission = sometimes\n");
	refused((const char *const[]){"-c", ini, NULL},
		"[agent] admission = 'sometimes': unknown key or bad value");
	write_file(ini, "[agent]\nadmission = priority\nstarve_ms = soon\n");
	refused((const char *const[]){"-c", ini, NULL},
		"[agent] starve_ms = 'soon': unknown key or bad value");
	/* a bound in the file, FCFS on the command line: the bound is named by its key */
	write_file(ini, "[agent]\nadmission = priority\nstarve_ms = 100\n");
	refused((const char *const[]){"-c", ini, "--admission", "fcfs", NULL},
		"qsteer-agent: [agent] starve_ms = 100: the starvation bound applies to "
		"priority admission only");
}

static int
kill_child(void **state)
{
	(void)state;
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = 0;
	}
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/qsteer-admission.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	const char *names[] = {"order.log", "refused.log", "prio.ini", "prio2.ini", "bad.ini"};
	char p[128];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		unlink(p);
	}
	return rmdir(tmpdir);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_refusals, kill_child),
	    cmocka_unit_test_teardown(test_default_fcfs, kill_child),
	    cmocka_unit_test_teardown(test_priority_option, kill_child),
	    cmocka_unit_test_teardown(test_priority_config, kill_child),
	    cmocka_unit_test_teardown(test_option_over_config, kill_child),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test-agent-admission QSTEER_AGENT\n");
		return 2;
	}
	agent_exe = argv[1];
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
