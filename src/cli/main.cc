// gemma4: the command-line front end. Each subcommand lives in its own cmd_*.cc file.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/common.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"gemma4.cpp: run Gemma 4 and Gemma 3 models on your own machine", "gemma4"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("gemma4.cpp ") + GEMMA4_VERSION);
  g4::cli::AddGenerate(app);
  g4::cli::AddLogits(app);
  g4::cli::AddTokenize(app);
  g4::cli::AddInfo(app);
  g4::cli::AddFit(app);
  g4::cli::AddCreate(app);
  g4::cli::AddBench(app);
  g4::cli::AddEmbed(app);
  g4::cli::AddRender(app);
  g4::cli::AddRun(app);
  g4::cli::AddConvert(app);
  g4::cli::AddQuantize(app);
  g4::cli::AddPerplexity(app);
  g4::cli::AddServe(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const g4::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
