// The ficus command line: a thin layer over the server module.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "server/server.h"

int main(int argc, char** argv) {
  CLI::App app{"ficus — the gateway a team puts in front of its application once it has users"};
  app.set_version_flag("--version", std::string("ficus ") + FICUS_VERSION);
  app.require_subcommand(1);

  std::string config_path;
  auto* run = app.add_subcommand("run", "Run the gateway");
  run->add_option("-c,--config", config_path, "Config file (YAML)")->required();
  auto* check = app.add_subcommand("check", "Validate a config and print what it would serve");
  check->add_option("-c,--config", config_path, "Config file (YAML)")->required();

  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) return ficus::server::Run(config_path);
  if (check->parsed()) return ficus::server::Check(config_path);
  return 2;
}
