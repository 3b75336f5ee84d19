// ddpipe: thin entry point. The command line is in cli.cpp, everything else in src/.
#include "cli.h"

int main(int argc, char** argv) { return ddpipe::app::run_cli(argc, argv); }
