// Bad input to the command line, case by case from a bad-input campaign: every case exits with status 1
// and one message naming the input, promptly (before any sampling), leaves no file behind and replaces
// nothing. Each case here crashed, hung, computed for minutes or silently changed a value before.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../support/temp_dir.hpp"
#include "cli_helpers.hpp"
#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/io/atomic_file.hpp"
#include "hyvideo/io/image.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/pipelines/default_model.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;
using hyvideo::test::run_cli;
using hyvideo::test::TempDir;

namespace {

// A short run of the built-in model (about a second): a case that is not refused would finish and fail
// the status check rather than take minutes.
const std::string kSmall = "generate --video-size 64 64 --video-length 5 --infer-steps 2 --seed 3 ";

struct Case {
    std::string args;    // after the program name
    std::string expect;  // a piece of the message
};

// Runs each case: exit status 1, the expected words, no sampling started (no progress line), within a
// few seconds, and the directory exactly as before.
void expect_refused(const TempDir& dir, const std::vector<Case>& cases) {
    const auto before = dir.entries();
    for (const auto& c : cases) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = run_cli(c.args);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        INFO(c.args, "\n", r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find(c.expect) != std::string::npos);
        CHECK(r.output.find("step 1/") == std::string::npos);
        CHECK(r.output.find("terminate called") == std::string::npos);
        CHECK(seconds < 30);
        CHECK(dir.entries() == before);
    }
}

bool is_fifo_node(const fs::path& p) { return fs::is_fifo(fs::symlink_status(p)); }

}  // namespace

TEST_CASE("bad input: numbers the run cannot use are refused with the flag and the limit, never changed") {
    TempDir d;
    const std::string o = " -o " + (d / "out.mp4").string();
    expect_refused(d, {
        {kSmall + "--infer-steps 9223372036854775807" + o, "--infer-steps 9223372036854775807: must be in 1..10000"},
        {kSmall + "--infer-steps 1000000000" + o, "--infer-steps"},
        {kSmall + "--infer-steps 0" + o, "--infer-steps 0"},
        {kSmall + "--infer-steps 9223372036854775808" + o, "--infer-steps"},
        {kSmall + "--video-size 16400 16400" + o, "16384"},
        {kSmall + "--video-size 20000 20000" + o, "16384"},
        {kSmall + "--video-size 100000 100000" + o, "16384"},
        {kSmall + "--video-size 9223372036854775807 64" + o, "height 9223372036854775807 is not in 1..16384"},
        {kSmall + "--video-size 64 -16" + o, "width -16"},
        {kSmall + "--video-size 16384 16384 --video-length 4097" + o, "GiB"},
        {kSmall + "--video-length 0" + o, "--video-length 0"},
        {kSmall + "--video-length 8" + o, "4k+1"},
        {kSmall + "--video-length 100001" + o, "at most 4097"},
        {kSmall + "--flow-shift 0" + o, "--flow-shift 0"},
        {kSmall + "--flow-shift nan" + o, "--flow-shift"},
        {kSmall + "--flow-shift inf" + o, "--flow-shift"},
        {kSmall + "--flow-shift -7" + o, "--flow-shift -7"},
        {kSmall + "--embedded-cfg-scale nan" + o, "--embedded-cfg-scale"},
        {kSmall + "--cfg-scale inf" + o, "--cfg-scale"},
        {kSmall + "--teacache 0" + o, "--teacache 0: must be a threshold in (0, 10]"},
        {kSmall + "--teacache nan" + o, "--teacache"},
        {kSmall + "--fbcache -0.1" + o, "--fbcache -0.1"},
        {kSmall + "--teacache 0.1 --fbcache 0.1" + o, "--teacache and --fbcache: choose one step cache"},
        {kSmall + "--prefetch next-block" + o, "--prefetch next-block: only --dit weights are streamed"},
        {kSmall + "--fps 0" + o, "--fps 0: must be in (0, 1000]"},
        {kSmall + "--fps nan" + o, "--fps"},
        {kSmall + "--fps 1e9" + o, "--fps 1e+09"},
        {kSmall + "--seed 18446744073709551616" + o, "--seed '18446744073709551616'"},
        {kSmall + "--seed -1" + o, "--seed"},
        {kSmall + "--seed 1e23" + o, "--seed '1e23'"},
        {"--threads -1 " + kSmall + o, "--threads -1"},
    });
    // The --fps message is short: no 309-digit number.
    const auto r = run_cli(kSmall + "--fps 0" + o);
    CHECK(r.output.size() < 200);
}

TEST_CASE("bad input: command-line syntax errors exit with 1, --help with 0") {
    TempDir d;
    expect_refused(d, {
        {"generate --no-such-flag", "no-such-flag"},
        {"generate --infer-steps", "--infer-steps"},
        {"generate --infer-steps abc", "abc"},
        {"generate --precision f64", "f64"},
        {"generate --vae-precision f16", "f16"},
        {"generate --prefetch all", "all"},
        {"generate --video-size 64", "video-size"},
        {"nonsense-subcommand", "unknown command 'nonsense-subcommand'"},
        {"", "subcommand"},
    });
    const auto help = run_cli("generate --help");
    CHECK(help.status == 0);
    CHECK(help.output.find("--video-size") != std::string::npos);
}

TEST_CASE("bad input: a FIFO, a directory or a device as an input is refused, not read") {
    TempDir d;
    const fs::path fifo = d / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const std::string f = fifo.string();
    const std::string o = " -o " + (d / "out.mp4").string();
    // Without the fix each of these blocked forever (run_cli's timeout would report status 124).
    expect_refused(d, {
        {"inspect " + f, "FIFO"},
        {"golden " + f, "FIFO"},
        {"convert " + f + " " + (d / "out.safetensors").string(), "FIFO"},
        {kSmall + "--i2v-image-path " + f + o, "FIFO"},
        {kSmall + "--dit " + f + " --vae " + f + " --text-embeds " + f + o, "FIFO"},
        {"inspect /dev/zero", "character device"},
        {"inspect " + d.path().string() + "/", "no checkpoint file"},
    });
}

TEST_CASE("bad input: --dit-config naming a directory or a missing file names the flag and the file") {
    TempDir d;
    const fs::path ckpt = fs::path(HYVIDEO_TEST_DATA_DIR) / "checkpoints";
    fs::create_directory(d / "a_dir");
    REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
    // Embeddings of the test checkpoint's text widths, so that only the config is wrong.
    const HYVideoConfig cfg = Checkpoint::open(ckpt / "official" / "transformers", {.kind = ModelKind::dit}).dit_config().config;
    PromptEmbeds e = default_prompt_embeds(cfg, 1);
    save_safetensors(d / "embeds.safetensors",
                     {{"text_states", e.text_states}, {"text_mask", e.text_mask}, {"text_states_2", e.text_states_2}});
    {
        nlohmann::json deep = cfg.to_json();
        deep["mm_single_blocks_depth"] = 1000000000;
        std::ofstream(d / "deep.json") << deep.dump();
        nlohmann::json huge = cfg.to_json();
        huge["hidden_size"] = 1e30;
        std::ofstream(d / "huge.json") << huge.dump();
        std::ofstream(d / "array.json") << "[1, 2, 3]";
        std::ofstream(d / "nul.json") << std::string("{}\0{\"hidden_size\": 5}", 20);
        nlohmann::json groups0 = AutoencoderKLCausal3DConfig{}.to_json();
        groups0["norm_num_groups"] = 0;
        std::ofstream(d / "groups0.json") << groups0.dump();
    }
    const std::string real = " --dit " + (ckpt / "official" / "transformers").string() + " --vae " +
                             (ckpt / "official" / "vae").string() + " --text-embeds " + (d / "embeds.safetensors").string() +
                             " -o " + (d / "out.mp4").string();
    expect_refused(d, {
        {kSmall + "--dit-config " + (d / "a_dir").string() + real, "--dit-config '" + (d / "a_dir").string() + "': is a directory"},
        {kSmall + "--dit-config " + (d / "missing.json").string() + real, "missing.json': cannot open"},
        {kSmall + "--vae-config " + (d / "a_dir").string() + real, "--vae-config"},
        {kSmall + "--dit-config " + (d / "fifo").string() + real, "--dit-config '" + (d / "fifo").string() + "': is a FIFO"},
        // Configs that disagree with the weights are refused from the stored shapes, before the model is
        // built (10^9 blocks once took 15 GB before anything compared them).
        {kSmall + "--dit-config " + (d / "deep.json").string() + real, "mm_single_blocks_depth"},
        {kSmall + "--dit-config " + (d / "huge.json").string() + real, "1e+30"},
        {kSmall + "--dit-config " + (d / "array.json").string() + real, "not a JSON object"},
        {kSmall + "--dit-config " + (d / "nul.json").string() + real, "NUL byte"},
        {kSmall + "--model HYVideo-T/2 " + real, "--model: "},
        {kSmall + "--vae-config " + (d / "groups0.json").string() + real, "norm_num_groups"},
    });
}

TEST_CASE("bad input: an output onto a FIFO or a device node is refused and the node left as it was") {
    TempDir d;
    const fs::path fifo = d / "fifo.mp4";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::vector<Case> cases = {
        {kSmall + "-o " + fifo.string(), "FIFO"},
        {"convert " + (fs::path(HYVIDEO_TEST_DATA_DIR) / "checkpoints" / "official" / "vae").string() + " " + fifo.string(),
         "FIFO"},
    };
    // A character device of its own (the numbers of /dev/null), so that a regression replaces this node
    // and not the system's. Making one needs root; CI runs as root.
    const fs::path dev = d / "null";
    const bool have_dev = ::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0;
    if (have_dev) {
        cases.push_back({kSmall + "-o " + dev.string(), "character device"});
        cases.push_back({kSmall + "--save-path " + d.path().string() + " -o " + dev.string(), "character device"});
    }
    expect_refused(d, cases);
    CHECK(is_fifo_node(fifo));
    if (have_dev) {
        struct stat st {};
        REQUIRE(::stat(dev.c_str(), &st) == 0);
        CHECK(S_ISCHR(st.st_mode));
    }
    // A symbolic link to a regular file is followed: the file is replaced and the link stays.
    std::ofstream(d / "target.mp4") << "old";
    fs::create_symlink(d / "target.mp4", d / "link.mp4");
    const auto r = run_cli(kSmall + "-o " + (d / "link.mp4").string());
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(fs::is_symlink(d / "link.mp4"));
    CHECK(fs::file_size(d / "target.mp4") > 100);
}

TEST_CASE("bad input: an unwritable --frames-dir is found before the work, and nothing is written") {
    TempDir d;
    const std::string o = " -o " + (d / "out.mp4").string();
    std::ofstream(d / "a_file") << "x";
    expect_refused(d, {
        {kSmall + "--frames-dir /proc/hyvideo_frames" + o, "--frames-dir '/proc/hyvideo_frames': cannot be written"},
        {kSmall + "--frames-dir " + (d / "a_file").string() + o, "not a directory"},
        {kSmall + "--frames-dir " + (d / "a_file" / "sub").string() + o, "not a directory"},
        {kSmall + "--save-path " + (d / "a_file").string(), "--save-path '" + (d / "a_file").string() + "': "},
        {kSmall + "--save-path " + (d / "a_file" / "sub").string(), "--save-path"},
    });
}

TEST_CASE("bad input: a legacy (pre-1.6) torch.save file gets the legacy-format message") {
    TempDir d;
    // A bare pickle: protocol 2, as torch.save wrote before the ZIP format.
    {
        std::ofstream f(d / "old.pt", std::ios::binary);
        const unsigned char bytes[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8,
                                       0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e};
        f.write(reinterpret_cast<const char*>(bytes), sizeof bytes);
    }
    expect_refused(d, {{"inspect " + (d / "old.pt").string(), "legacy torch.save format"},
                       {"convert " + (d / "old.pt").string() + " " + (d / "x.safetensors").string(), "legacy"}});
}

TEST_CASE("AtomicFile: SIGINT, SIGTERM and SIGHUP remove the temporary file, then end the process as the signal would") {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        TempDir d;
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            remove_temporaries_on_signals();
            AtomicFile f(d / "video.mp4");
            f.write("partial", 7);
            ::raise(sig);
            ::_exit(3);  // not reached: the signal ends the process
        }
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == sig);
        CHECK(d.entries().empty());
    }
}

TEST_CASE("AtomicFile: a FIFO, a device or a directory is never a target; check_target finds it before any write") {
    TempDir d;
    REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
    fs::create_directory(d / "dir");
    CHECK_THROWS_WITH_AS(AtomicFile::check_target(d / "fifo"), doctest::Contains("FIFO"), Error);
    CHECK_THROWS_WITH_AS(AtomicFile(d / "fifo"), doctest::Contains("FIFO"), Error);
    CHECK_THROWS_WITH_AS(AtomicFile::check_target(d / "dir"), doctest::Contains("is a directory"), Error);
    CHECK_THROWS_WITH_AS(AtomicFile::check_target("/dev/null"), doctest::Contains("character device"), Error);
    CHECK_THROWS_AS(AtomicFile::check_target(d / "missing_dir" / "x"), Error);
    AtomicFile::check_target(d / "new_file");
    CHECK(is_fifo_node(d / "fifo"));
    CHECK(d.entries() == std::vector<std::string>{"dir", "fifo"});  // the probe removed its temporary file
}

TEST_CASE("bad input: an image with a side over 32768 pixels is refused from its header") {
    TempDir d;
    const std::vector<std::uint8_t> row(3 * 40000, 128);
    write_png(d / "wide.png", row.data(), 1, 40000);
    expect_refused(d, {{kSmall + "--i2v-image-path " + (d / "wide.png").string() + " -o " + (d / "out.mp4").string(),
                        "the largest side read is 32768"}});
}

TEST_CASE("generate: SIGINT while the video is being written leaves no temporary file") {
    // The signal is sent while the PNG frames or the MP4 are being written, which is when a temporary
    // file exists; the handler must remove it before the signal ends the process.
    TempDir d;
    const fs::path log = d.path().parent_path() / (d.path().filename().string() + ".log");
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        const std::string out = (d / "out.mp4").string(), frames = (d / "frames").string();
        ::execl(HYVIDEO_CLI, HYVIDEO_CLI, "generate", "--video-size", "256", "256", "--video-length", "33", "--infer-steps",
                "1", "--seed", "1", "-o", out.c_str(), "--frames-dir", frames.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    // Standard output is a file, so fully buffered: the moment to strike is told by the files instead, the
    // first hidden temporary file of a frame or of the video.
    const auto temporaries = [&] {
        std::vector<std::string> found;
        std::error_code ec;
        for (fs::recursive_directory_iterator it(d.path(), ec), end; !ec && it != end; it.increment(ec))
            if (it->path().filename().string().ends_with(".tmp")) found.push_back(it->path().string());
        return found;
    };
    bool writing = false;
    for (int i = 0; i < 600000 && !writing; ++i) {  // up to about 5 minutes
        writing = !temporaries().empty();
        if (!writing) ::usleep(500);
    }
    CHECK(writing);
    ::kill(child, SIGINT);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    fs::remove(log);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGINT);
    CHECK(temporaries().empty());
    CHECK(!fs::exists(d / "out.mp4"));  // interrupted before the video was complete
}
