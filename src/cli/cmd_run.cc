// gemma4 run: chat with a model in the terminal (or answer one prompt and exit, for pipelines).
//
// Interactive: streamed answers with thinking shown dimmed, multi-line input (end a line with "\",
// or wrap a block in """), history recall (libedit), /commands, Ctrl-C to stop an answer, Ctrl-D to
// leave. Tool calls are shown; their result is typed by the user or produced by --tool-exec.
// Images and audio (--image/--audio, /image and /audio) go with the next user message.
#include <editline/readline.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "chat/output_parser.h"
#include "cli/chat_media.h"
#include "cli/common.h"
#include "engine/chat.h"
#include "engine/conversation.h"
#include "engine/generator.h"
#include "model/memory_plan.h"
#include "engine/speculative.h"
#include "util/error.h"
#include "util/timer.h"

namespace g4::cli {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void OnSigint(int) { g_interrupted = 1; }

struct RunOptions {
  ModelOptions m;
  SamplingOptions s;
  std::string prompt;
  std::string system;
  std::string tools_file;
  std::string tool_exec;
  bool think = false;
  bool hide_thinking = false;
  int n_predict = -1;
  int max_tool_rounds = 8;
  std::string context_overflow = "error";
  DraftOptions draft;
  MediaOptions media;
};

struct Style {
  bool color = false;
  const char* dim() const { return color ? "\x1b[2m" : ""; }
  const char* bold() const { return color ? "\x1b[1m" : ""; }
  const char* reset() const { return color ? "\x1b[0m" : ""; }
};

// Text for the terminal: control characters other than newline and tab are shown as U+FFFD, so
// that a model's output can never move the cursor or change the terminal's state.
std::string ForTerminal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) {
      out += "\xef\xbf\xbd";
    } else {
      out += c;
    }
  }
  return out;
}

std::string ReadFileText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) Fail("%s: cannot read", path.c_str());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs `cmd` with `input` on stdin and returns its stdout. The command is the user's own choice
// (--tool-exec); nothing from the model reaches the shell except through stdin.
std::string RunToolCommand(const std::string& cmd, const std::string& input) {
  char path[] = "/tmp/gemma4-tool-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) Fail("--tool-exec: cannot create a temporary file");
  if (write(fd, input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
    close(fd);
    unlink(path);
    Fail("--tool-exec: cannot write the call");
  }
  close(fd);
  std::string full = cmd;
  full += " < ";
  full += path;
  FILE* p = popen(full.c_str(), "r");
  if (!p) {
    unlink(path);
    Fail("--tool-exec: cannot run '%s'", cmd.c_str());
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  unlink(path);
  if (status != 0) std::fprintf(stderr, "warning: --tool-exec exited with status %d\n", status);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

class Chat {
 public:
  Chat(const RunOptions& o, Loaded& l, bool interactive)
      : o_(o), l_(l), setup_(ChatSetupFor(*l.model, *l.tok)), conv_(setup_, *l.tok), gen_(*l.ctx, *l.tok),
        interactive_(interactive) {
    style_.color = interactive && isatty(STDOUT_FILENO);
    conv_.SetSystem(o.system);
    conv_.SetThinking(o.think);
    overflow_ = ParseContextOverflow(o.context_overflow, "--context-overflow");
    show_thinking_ = !o.hide_thinking;
    if (!o.tools_file.empty()) {
      chat::Json tools;
      try {
        tools = chat::Json::parse(ReadFileText(o.tools_file));
      } catch (const chat::Json::parse_error& e) {
        Fail("%s: not valid JSON: %s", o.tools_file.c_str(), e.what());
      }
      if (!tools.is_array()) Fail("%s: tools must be a JSON array", o.tools_file.c_str());
      // Render once to validate the tools (a clear error naming the element).
      chat::Render(setup_.format, chat::Json::array({{{"role", "user"}, {"content", "x"}}}), tools);
      conv_.SetTools(tools);
    }
  }

  // One user turn (with the embedded media of its image / audio parts), with as many tool rounds as
  // the model asks for. A turn that fails (it cannot fit, its media do not fit the batch, ...)
  // leaves the conversation as it was before it.
  void Turn(const chat::Json& user_content, std::vector<PromptMedia> media = {}) {
    const Conversation before = conv_;
    try {
      TurnInner(user_content, std::move(media));
    } catch (const Error&) {
      conv_ = before;
      throw;
    }
  }

  void TurnInner(const chat::Json& user_content, std::vector<PromptMedia> media) {
    conv_.AddUser(user_content, std::move(media));
    for (int round = 0; round <= o_.max_tool_rounds; ++round) {
      const chat::ParsedOutput out = Answer();
      if (out.tool_calls.empty() || g_interrupted) return;
      const chat::Json& calls = conv_.messages().back()["tool_calls"];
      for (const auto& call : calls) {
        const std::string name = call["function"]["name"].get<std::string>();
        const chat::Json args = call["function"]["arguments"];
        const std::string call_json = chat::Json{{"name", name}, {"arguments", args}}.dump();
        std::string result;
        if (!o_.tool_exec.empty()) {
          if (interactive_) std::printf("%s[tool call] %s%s\n", style_.bold(), call_json.c_str(), style_.reset());
          result = RunToolCommand(o_.tool_exec, call_json);
          if (interactive_) std::printf("%s[tool result] %s%s\n", style_.dim(), result.c_str(), style_.reset());
        } else if (interactive_) {
          std::printf("%s[tool call] %s%s\n", style_.bold(), call_json.c_str(), style_.reset());
          char* line = readline("tool result> ");
          if (!line) return;
          result = line;
          free(line);
        } else {
          // One-shot without an executor: print the call for the caller and stop.
          std::printf("%s\n", call_json.c_str());
          return;
        }
        chat::Json content;
        try {
          content = chat::Json::parse(result);
        } catch (...) {
          content = result;
        }
        conv_.AddToolResult(call["id"].get<std::string>(), name, content);
      }
    }
  }

  void Stats() const {
    const int64_t used = l_.ctx->kv().SeqLen(0);
    std::printf("context: %lld of %lld tokens used | last answer: %d tokens at %.2f tokens/s, prompt %d new tokens "
                "at %.2f tokens/s\n",
                (long long)used, (long long)l_.ctx->kv().options().n_ctx, last_.n_gen, last_.gen_tps,
                last_.n_prompt_eval, last_.prompt_tps);
    if (spec_) {
      std::printf("%s\n", DraftLine("last answer", last_draft_).c_str());
      std::printf("%s\n", DraftLine("conversation", total_draft_).c_str());
    }
  }

  // Speculative decoding for every answer (the drafter reads the conversation's tokens; the
  // assistant reads the target's cache and hidden states, so the context must keep them).
  void EnableDrafting(std::unique_ptr<Drafter> drafter, const SpeculativeOptions& so) {
    drafter_ = std::move(drafter);
    spec_ = std::make_unique<SpeculativeGenerator>(*l_.ctx, *l_.tok, *drafter_, so);
  }

  Conversation& conv() { return conv_; }
  void set_show_thinking(bool on) { show_thinking_ = on; }
  void Reset() {
    conv_.Clear();
    gen_.Reset();
    if (spec_) spec_->Reset();
  }

 private:
  struct LastStats {
    int n_gen = 0, n_prompt_eval = 0;
    double gen_tps = 0, prompt_tps = 0;
  };

  std::string DraftLine(const char* what, const SpeculativeStats& st) const {
    return StrFormat("drafting (%s), %s: %lld drafted, %lld accepted (%.1f%%), %.2f tokens per target forward",
                     drafter_->name(), what, (long long)st.drafted, (long long)st.accepted, 100 * st.acceptance(),
                     st.tokens_per_forward());
  }

  chat::ParsedOutput Answer() {
    // The prompt leaves at least one position of the context for the answer.
    FitResult fit;
    const std::vector<PromptPiece>& prompt = conv_.NextPrompt(l_.ctx->kv().options().n_ctx - 1, overflow_, &fit);
    if (fit.dropped_turns > 0) {
      std::fprintf(stderr, "%s[context: dropped the %d oldest turn(s) (%d messages) to fit the context of %lld tokens; the "
                   "prompt is now %lld tokens]%s\n",
                   style_.dim(), fit.dropped_turns, fit.dropped_messages, (long long)l_.ctx->kv().options().n_ctx,
                   (long long)fit.tokens, style_.reset());
    }
    chat::OutputParser parser(setup_.format, conv_.parser_state());
    chat::ParsedOutput out;
    bool in_thinking = false;
    auto emit = [&](const std::vector<chat::ParseEvent>& events) {
      for (const auto& e : events) {
        switch (e.kind) {
          case chat::ParseEvent::Kind::kThinking:
            out.thinking += e.text;
            if (show_thinking_ && interactive_) {
              if (!in_thinking) std::fputs(style_.dim(), stdout);
              in_thinking = true;
              const std::string t = ForTerminal(e.text);
              std::fwrite(t.data(), 1, t.size(), stdout);
            }
            break;
          case chat::ParseEvent::Kind::kContent:
            out.content += e.text;
            if (in_thinking) {
              std::fputs(style_.reset(), stdout);
              std::fputs("\n", stdout);
              in_thinking = false;
            }
            if (interactive_) {
              const std::string t = ForTerminal(e.text);
              std::fwrite(t.data(), 1, t.size(), stdout);
            } else {
              std::fwrite(e.text.data(), 1, e.text.size(), stdout);
            }
            break;
          case chat::ParseEvent::Kind::kToolCall:
            out.tool_calls.push_back(e.call);
            break;
          case chat::ParseEvent::Kind::kWarning:
            out.warnings.push_back(e.text);
            if (interactive_) std::fprintf(stderr, "\nwarning: %s\n", e.text.c_str());
            break;
          case chat::ParseEvent::Kind::kEnd:
            out.stop = e.text;
            out.ended = true;
            break;
        }
      }
      std::fflush(stdout);
    };
    StopCriteria stop;
    stop.max_tokens = o_.n_predict;
    stop.eog_tokens = setup_.stop_ids;
    stop.include_eog_text = true;  // the parser sees the stop marker and ends the turn
    // g_interrupted is not reset here but when the message is read (ReadMessage): a Ctrl-C pressed
    // after Enter, while the prompt is still being prepared or a tool runs, stops this answer too.
    std::vector<chat::ParseEvent> events;
    auto on_token = [&](int32_t, std::string_view text) {
      events.clear();
      parser.Feed(text, &events);
      emit(events);
      return g_interrupted == 0;
    };
    GenerationResult r = spec_ ? spec_->Generate(prompt, sampling_, stop, on_token)
                               : gen_.Generate(prompt, sampling_, stop, on_token);
    events.clear();
    parser.Finish(&events);
    emit(events);
    if (in_thinking) std::fputs(style_.reset(), stdout);
    if (!out.content.empty() || interactive_) std::fputs("\n", stdout);
    std::fflush(stdout);
    const bool stopped = r.finish == FinishReason::kEndOfGeneration;
    std::vector<int32_t> generated = r.tokens;
    conv_.AddAssistant(generated, stopped, out);
    last_.n_gen = static_cast<int>(r.tokens.size());
    last_.gen_tps = r.t_generate > 0 ? r.tokens.size() / r.t_generate : 0;
    last_.n_prompt_eval = r.n_prompt_evaluated;
    last_.prompt_tps = r.t_prompt > 0 ? r.n_prompt_evaluated / r.t_prompt : 0;
    if (r.finish == FinishReason::kCancelled && interactive_) std::printf("%s[stopped]%s\n", style_.dim(), style_.reset());
    if (spec_) {
      last_draft_ = spec_->stats();
      total_draft_.drafted += last_draft_.drafted;
      total_draft_.accepted += last_draft_.accepted;
      total_draft_.target_forwards += last_draft_.target_forwards;
      total_draft_.generated += last_draft_.generated;
      if (o_.draft.verbose) {
        // stderr, so that a one-shot answer on stdout stays exactly the answer.
        std::fprintf(stderr, "%s%s%s\n", style_.dim(), DraftLine("answer", last_draft_).c_str(), style_.reset());
      }
    }
    return out;
  }

 public:
  SamplingParams sampling_;

 private:
  const RunOptions& o_;
  Loaded& l_;
  ChatSetup setup_;
  Conversation conv_;
  Generator gen_;
  std::unique_ptr<Drafter> drafter_;
  std::unique_ptr<SpeculativeGenerator> spec_;
  SpeculativeStats last_draft_, total_draft_;
  bool interactive_;
  bool show_thinking_ = true;
  ContextOverflow overflow_ = ContextOverflow::kError;
  Style style_;
  LastStats last_;
};

const char* kHelp =
    "Commands:\n"
    "  /think on|off      thinking mode (the model reasons before answering)\n"
    "  /think show|hide   show or hide the thinking text\n"
    "  /clear             forget the conversation\n"
    "  /save FILE         save the conversation as JSON (OpenAI-style messages)\n"
    "  /load FILE         load a conversation saved with /save (its images and audio are read again)\n"
    "  /image FILE        attach an image to the next message (PNG, JPEG, BMP, GIF, WebP)\n"
    "  /audio FILE        attach audio to the next message (WAV, FLAC, Ogg, MP3)\n"
    "  /stats             context used and speed (and drafting: acceptance, tokens per target forward)\n"
    "  /help              this help\n"
    "  /bye               leave (or Ctrl-D)\n"
    "Multi-line input: end a line with \\ to continue it, or wrap text in \"\"\" ... \"\"\".\n"
    "Ctrl-C stops the current answer.\n";

// Reads one user message (possibly several lines). Returns false at end of input.
bool ReadMessage(std::string* msg) {
  msg->clear();
  bool block = false;
  for (;;) {
    g_interrupted = 0;
    char* raw = readline(msg->empty() && !block ? ">>> " : "... ");
    if (!raw) {
      if (g_interrupted) {  // Ctrl-C at the prompt clears the input
        std::printf("\n");
        msg->clear();
        block = false;
        continue;
      }
      return !msg->empty();
    }
    std::string line = raw;
    free(raw);
    if (msg->empty() && !block && line.rfind("\"\"\"", 0) == 0) {
      block = true;
      line = line.substr(3);
      if (line.size() >= 3 && line.compare(line.size() - 3, 3, "\"\"\"") == 0) {
        *msg = line.substr(0, line.size() - 3);
        return true;
      }
      *msg = line;
      continue;
    }
    if (block) {
      if (line.size() >= 3 && line.compare(line.size() - 3, 3, "\"\"\"") == 0) {
        *msg += "\n" + line.substr(0, line.size() - 3);
        return true;
      }
      *msg += "\n" + line;
      continue;
    }
    if (!line.empty() && line.back() == '\\') {
      line.pop_back();
      *msg += line + "\n";
      continue;
    }
    *msg += line;
    return true;
  }
}

void Interactive(const RunOptions& o, Loaded& l, Chat& chat, ChatMedia& media) {
  std::printf("gemma4.cpp chat with %s (context %lld tokens). /help for commands, Ctrl-D to leave.\n",
              o.m.model.c_str(), (long long)l.ctx->kv().options().n_ctx);
  // Attachments for the next message: --image/--audio first, then /image and /audio.
  std::vector<ChatMedia::Attachment> pending = media.EmbedFlags();
  for (const auto& a : pending) std::printf("attached %s\n", a.summary.c_str());
  std::string msg;
  while (ReadMessage(&msg)) {
    if (msg.empty()) continue;
    add_history(msg.c_str());
    if (msg[0] == '/') {
      std::istringstream in(msg);
      std::string cmd, arg;
      in >> cmd;
      std::getline(in >> std::ws, arg);
      try {
        if (cmd == "/bye" || cmd == "/exit" || cmd == "/quit") {
          break;
        } else if (cmd == "/help" || cmd == "/?") {
          std::fputs(kHelp, stdout);
        } else if (cmd == "/clear") {
          chat.Reset();
          pending.clear();
          std::printf("conversation cleared\n");
        } else if (cmd == "/think") {
          if (arg == "on" || arg == "off") {
            chat.conv().SetThinking(arg == "on");
            std::printf("thinking %s\n", arg.c_str());
          } else if (arg == "show" || arg == "hide") {
            chat.set_show_thinking(arg == "show");
            std::printf("thinking text %s\n", arg == "show" ? "shown" : "hidden");
          } else {
            std::printf("usage: /think on|off|show|hide\n");
          }
        } else if (cmd == "/save") {
          if (arg.empty()) Fail("usage: /save FILE");
          std::ofstream f(arg);
          if (!f) Fail("%s: cannot write", arg.c_str());
          f << chat.conv().messages().dump(2) << "\n";
          std::printf("saved %zu messages to %s\n", chat.conv().messages().size(), arg.c_str());
        } else if (cmd == "/load") {
          if (arg.empty()) Fail("usage: /load FILE");
          chat::Json messages;
          try {
            messages = chat::Json::parse(ReadFileText(arg));
          } catch (const chat::Json::parse_error& e) {
            Fail("%s: not valid JSON: %s", arg.c_str(), e.what());
          }
          std::vector<std::vector<PromptMedia>> loaded = media.ForMessages(messages);
          chat.Reset();
          chat.conv().SetMessages(messages, std::move(loaded));
          std::printf("loaded %zu messages from %s\n", messages.size(), arg.c_str());
        } else if (cmd == "/image" || cmd == "/audio") {
          if (arg.empty()) Fail("usage: %s FILE", cmd.c_str());
          pending.push_back(media.Embed(cmd == "/image" ? mm::MediaKind::kImage : mm::MediaKind::kAudio, arg));
          std::printf("attached %s\n", pending.back().summary.c_str());
        } else if (cmd == "/stats") {
          chat.Stats();
        } else {
          std::printf("unknown command %s (/help lists them)\n", cmd.c_str());
        }
      } catch (const g4::Error& e) {
        std::printf("error: %s\n", e.what());
      }
      continue;
    }
    try {
      std::vector<ChatMedia::Attachment> attached = std::move(pending);
      pending.clear();  // they go with this message, whatever becomes of it
      const chat::Json content = ChatMedia::Content(msg, attached);  // before the media move out
      chat.Turn(content, ChatMedia::Media(std::move(attached)));
    } catch (const g4::Error& e) {
      std::printf("\nerror: %s\n", e.what());
    }
  }
  std::printf("\n");
}

void RunRun(const RunOptions& o) {
  const bool stdin_tty = isatty(STDIN_FILENO);
  std::string prompt = o.prompt;
  const bool one_shot = !prompt.empty() || !stdin_tty;
  if (one_shot && prompt.empty()) prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  ModelOptions mo = o.m;
  // Flags first: a bad --draft/--draft-mode combination fails before anything is loaded.
  const std::string draft_mode = o.draft.enabled() ? o.draft.Mode() : "";
  const double t0 = NowSeconds();
  const bool show_progress = !one_shot && isatty(STDERR_FILENO);
  const uint64_t available = mo.ctx_auto ? AvailableMemory() : 0;
  auto model = Model::Load(mo.model);
  ResolveAutoContext(&mo, *model, 1, available);
  if (show_progress) {
    model->Prefault([&](double f) { std::fprintf(stderr, "\rloading %s: %3.0f%%", mo.model.c_str(), 100 * f); });
    std::fprintf(stderr, "\rloaded %s in %.1f s          \n", mo.model.c_str(), NowSeconds() - t0);
  }
  Loaded l;
  l.model = std::move(model);
  l.tok = std::make_unique<Tokenizer>(Tokenizer::FromGguf(l.model->file()));
  ContextOptions co = MakeContextOptions(mo, *l.model);
  co.keep_hidden = draft_mode == "assistant";
  l.ctx = std::make_unique<Context>(*l.model, co);
  std::unique_ptr<Model> draft_model;  // outlives the chat's drafter
  Chat chat(o, l, !one_shot);
  ChatMedia media(o.media, *l.model, *l.tok, *l.ctx);
  chat.sampling_ = o.s.Params(*l.model);
  if (!draft_mode.empty()) {
    std::unique_ptr<Drafter> drafter = MakeDrafter(o.draft, draft_mode, mo, *l.model, *l.ctx, &draft_model);
    SpeculativeOptions so;
    so.draft_max = o.draft.draft_max;
    so.draft_start = std::min(4, o.draft.draft_max);
    chat.EnableDrafting(std::move(drafter), so);
  }
  if (one_shot) {
    if (prompt.empty()) Fail("the prompt is empty");
    std::vector<ChatMedia::Attachment> attached = media.EmbedFlags();
    for (const auto& a : attached) std::fprintf(stderr, "%s\n", a.summary.c_str());
    const chat::Json content = ChatMedia::Content(prompt, attached);  // before the media move out
    chat.Turn(content, ChatMedia::Media(std::move(attached)));
    return;
  }
  struct sigaction sa = {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C interrupts the line editor's read
  sigaction(SIGINT, &sa, nullptr);
  rl_catch_signals = 0;
  Interactive(o, l, chat, media);
}

}  // namespace

void AddRun(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Chat with a model (interactive, or one answer for a given prompt)");
  o->m.Add(sub, false, /*allow_auto=*/true);
  o->s.Add(sub);
  sub->add_option("prompt", o->prompt, "Answer this prompt and exit (stdin is read when it is not a terminal)");
  sub->add_option("--system", o->system, "System prompt");
  sub->add_flag("--think", o->think, "Thinking mode: the model reasons before it answers");
  sub->add_flag("--hide-thinking", o->hide_thinking, "Do not show the thinking text");
  sub->add_option("--tools", o->tools_file, "A JSON array of tools (OpenAI function format) the model may call");
  sub->add_option("--tool-exec", o->tool_exec,
                  "Run this command for each tool call, with the call as JSON on stdin; its stdout is the result");
  sub->add_option("-n,--n-predict", o->n_predict, "Maximum tokens per answer (-1: no limit)");
  sub->add_option("--context-overflow", o->context_overflow,
                  "When the conversation outgrows the context: error (say how many tokens are over) or drop-oldest "
                  "(drop the oldest whole turns, keeping the system prompt)");
  o->draft.Add(sub);
  o->media.Add(sub);
  sub->callback([o] { RunRun(*o); });
}

}  // namespace g4::cli
