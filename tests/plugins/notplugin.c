/* notplugin.c — a shared object that is not a plugin (no descriptor): must be refused. */
int taming_test_not_a_plugin(int x);
__attribute__((visibility("default"))) int taming_test_not_a_plugin(int x) { return x + 1; }
