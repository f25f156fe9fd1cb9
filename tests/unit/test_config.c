/* Unit tests for config: flags, environment variables and defaults from one option table. */
#include "config.h"
#include "harness.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int port;
static double scale;
static const char *name;
static int verbose;

static const struct opt opts[] = {
    {"port", "TEST_CFG_PORT", OPT_INT, &port, 1, 65535, "port to listen on"},
    {"scale", "TEST_CFG_SCALE", OPT_DOUBLE, &scale, 0, 10, "time scale"},
    {"name", "TEST_CFG_NAME", OPT_STRING, &name, 0, 0, "a name"},
    {"verbose", "TEST_CFG_VERBOSE", OPT_FLAG, &verbose, 0, 1, "log more"},
};

/* Restores the defaults and clears the environment the table reads. */
static void reset(void)
{
    port = 8080;
    scale = 1.0;
    name = "default";
    verbose = 0;
    for (size_t i = 0; i < NELEMS(opts); i++)
        unsetenv(opts[i].env);
}

static int parse(int argc, char **argv, char *err, size_t errlen)
{
    err[0] = '\0';
    return config_parse(opts, NELEMS(opts), argc, argv, "usage: test [options]", err, errlen);
}

static void test_defaults_kept(void)
{
    reset();
    char *argv[] = {"prog", NULL};
    char err[256];
    CU_ASSERT_EQUAL(parse(1, argv, err, sizeof err), CONFIG_OK);
    CU_ASSERT_EQUAL(port, 8080);
    CU_ASSERT_DOUBLE_EQUAL(scale, 1.0, 0);
    CU_ASSERT_STRING_EQUAL(name, "default");
    CU_ASSERT_EQUAL(verbose, 0);
}

static void test_env_applied(void)
{
    reset();
    setenv("TEST_CFG_PORT", "9000", 1);
    setenv("TEST_CFG_SCALE", "0.25", 1);
    setenv("TEST_CFG_NAME", "from-env", 1);
    setenv("TEST_CFG_VERBOSE", "true", 1);
    char *argv[] = {"prog", NULL};
    char err[256];
    CU_ASSERT_EQUAL(parse(1, argv, err, sizeof err), CONFIG_OK);
    CU_ASSERT_EQUAL(port, 9000);
    CU_ASSERT_DOUBLE_EQUAL(scale, 0.25, 0);
    CU_ASSERT_STRING_EQUAL(name, "from-env");
    CU_ASSERT_EQUAL(verbose, 1);

    /* "0" turns a flag off; an empty variable is ignored. */
    reset();
    verbose = 1;
    setenv("TEST_CFG_VERBOSE", "0", 1);
    setenv("TEST_CFG_PORT", "", 1);
    CU_ASSERT_EQUAL(parse(1, argv, err, sizeof err), CONFIG_OK);
    CU_ASSERT_EQUAL(verbose, 0);
    CU_ASSERT_EQUAL(port, 8080);
    reset();
}

static void test_flag_overrides_env(void)
{
    reset();
    setenv("TEST_CFG_PORT", "9000", 1);
    setenv("TEST_CFG_VERBOSE", "0", 1);
    setenv("TEST_CFG_NAME", "from-env", 1);
    char *argv[] = {"prog", "--port", "7000", "--verbose", "--name=from-flag", NULL};
    char err[256];
    CU_ASSERT_EQUAL(parse(5, argv, err, sizeof err), CONFIG_OK);
    CU_ASSERT_EQUAL(port, 7000);
    CU_ASSERT_EQUAL(verbose, 1);
    CU_ASSERT_STRING_EQUAL(name, "from-flag");
    reset();
}

static void test_value_forms(void)
{
    reset();
    char *argv[] = {"prog", "--port=1234", "--scale", "2.5", "--name", "abc", "--verbose=1", NULL};
    char err[256];
    CU_ASSERT_EQUAL(parse(7, argv, err, sizeof err), CONFIG_OK);
    CU_ASSERT_EQUAL(port, 1234);
    CU_ASSERT_DOUBLE_EQUAL(scale, 2.5, 0);
    CU_ASSERT_STRING_EQUAL(name, "abc");
    CU_ASSERT_EQUAL(verbose, 1);

    /* Bounds are inclusive; the last occurrence wins. */
    char *argv2[] = {"prog", "--port=1", "--port=65535", "--scale=0", "--verbose=false", NULL};
    CU_ASSERT_EQUAL(parse(5, argv2, err, sizeof err), CONFIG_OK);
    CU_ASSERT_EQUAL(port, 65535);
    CU_ASSERT_DOUBLE_EQUAL(scale, 0.0, 0);
    CU_ASSERT_EQUAL(verbose, 0);
}

static void test_errors(void)
{
    static const struct {
        const char *what;
        int argc;
        char *argv[3];
    } cases[] = {
        {"int below min", 2, {"prog", "--port=0"}},
        {"int above max", 2, {"prog", "--port=65536"}},
        {"int not a number", 3, {"prog", "--port", "abc"}},
        {"int with a fraction", 2, {"prog", "--port=80.5"}},
        {"double not a number", 2, {"prog", "--scale=abc"}},
        {"double nan", 2, {"prog", "--scale=nan"}},
        {"double above max", 2, {"prog", "--scale=10.01"}},
        {"empty string", 2, {"prog", "--name="}},
        {"flag with a bad value", 2, {"prog", "--verbose=maybe"}},
        {"unknown option", 2, {"prog", "--bogus"}},
        {"unknown option with value", 2, {"prog", "--bogus=1"}},
        {"prefix of an option", 2, {"prog", "--por=1"}},
        {"missing value", 2, {"prog", "--port"}},
        {"stray positional argument", 2, {"prog", "stray"}},
        {"single dash", 2, {"prog", "-p"}},
        {"bare double dash", 2, {"prog", "--"}},
    };
    for (size_t i = 0; i < NELEMS(cases); i++) {
        reset();
        char err[256];
        int rc = parse(cases[i].argc, (char **)cases[i].argv, err, sizeof err);
        char msg[160];
        snprintf(msg, sizeof msg, "CONFIG_ERROR with a message [case: %s]", cases[i].what);
        CU_assertImplementation(rc == CONFIG_ERROR && err[0] != '\0', __LINE__, msg, __FILE__, "", CU_FALSE);
    }
    /* A rejected value leaves the destination alone. */
    CU_ASSERT_EQUAL(port, 8080);
}

static void test_env_error(void)
{
    reset();
    setenv("TEST_CFG_PORT", "not-a-port", 1);
    char *argv[] = {"prog", NULL};
    char err[256];
    CU_ASSERT_EQUAL(parse(1, argv, err, sizeof err), CONFIG_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "TEST_CFG_PORT")); /* says where the bad value came from */
    reset();
}

static void test_help(void)
{
    reset();
    char err[256];
    char *argv[] = {"prog", "--help", NULL};
    CU_ASSERT_EQUAL(parse(2, argv, err, sizeof err), CONFIG_HELP);
    char *argv2[] = {"prog", "--port=1", "-h", NULL};
    CU_ASSERT_EQUAL(parse(3, argv2, err, sizeof err), CONFIG_HELP);
}

static void test_usage(void)
{
    reset();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    config_usage(f, "usage: test [options]", opts, NELEMS(opts));
    CU_ASSERT_EQUAL(fclose(f), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "usage: test [options]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "--port V"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "TEST_CFG_PORT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "default: 8080"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "default: default"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "--help"));
    free(text);
}

int main(void)
{
    static const struct harness_test tests[] = {
        {"defaults are kept", test_defaults_kept},
        {"environment variables are applied", test_env_applied},
        {"a flag overrides its variable", test_flag_overrides_env},
        {"--name=value and --name value", test_value_forms},
        {"bad arguments are errors with a message", test_errors},
        {"a bad environment variable is an error", test_env_error},
        {"--help and -h", test_help},
        {"config_usage", test_usage},
        {NULL, NULL},
    };
    return harness_main("config", NULL, NULL, tests);
}
