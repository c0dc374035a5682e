using System.IO.Compression;
using Svg.ML.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Checkpoints;

/// <summary>Every bad file fails with a clear exception naming the file and the problem, and executes nothing.</summary>
public class CheckpointErrorTests
{
    const string Marker = "/tmp/svgml_fixture_pwned"; // what the malicious fixtures would create if they ran

    [Theory]
    [InlineData("malicious_os_system.pt", "os.system")]        // GLOBAL + REDUCE, hand-written protocol 2
    [InlineData("malicious_posix_system.pt", "posix.system")]  // what pickle writes for os.system on Linux, inside a state dict
    [InlineData("malicious_eval.pt", "builtins.eval")]         // protocol 4 STACK_GLOBAL
    [InlineData("malicious_inst.pt", "os.system")]             // protocol 0 INST
    [InlineData("malicious_lightning.ckpt", "subprocess.Popen")] // hidden in a non-weight entry (pickled as "commands Popen")
    public void MaliciousPickle_IsRefused_NamingTheGlobal_AndNothingRuns(string file, string global)
    {
        string path = Fixtures.Path_(file);
        var e = Assert.Throws<UnsafeCheckpointException>(() => Checkpoint.ReadTensors(path));
        Assert.Equal(global, e.Global);
        Assert.Contains($"'{global}'", e.Message);
        Assert.Contains(path, e.Message);
        Assert.Contains("code-execution primitive", e.Message);
        Assert.DoesNotContain("PickleAllowList.With", e.Message); // no hint to allow it
        Assert.False(File.Exists(Marker));
        // Refused through every entry point, whatever part of the file is asked for.
        Assert.Throws<UnsafeCheckpointException>(() => OfficialCheckpoints.LoadSvgAutoencoder(path));
    }

    [Fact]
    public void CorruptedPickle_AlwaysFailsWithACheckpointError_NeverAnotherException()
    {
        // Random byte changes and truncations of a real data.pkl: each either still parses or fails cleanly.
        byte[] original;
        using (var zip = ZipFile.OpenRead(Fixtures.Path_("svg_autoencoder.ckpt")))
        using (var s = zip.GetEntry("archive/data.pkl")!.Open())
        using (var m = new MemoryStream()) { s.CopyTo(m); original = m.ToArray(); }
        var rng = new Random(20251128);
        using var tmp = new TempFolder();
        int failures = 0;
        for (int i = 0; i < 150; i++)
        {
            var bytes = (byte[])original.Clone();
            if (i % 4 == 0) bytes = bytes[..rng.Next(bytes.Length)];
            else for (int k = 0, n = 1 + rng.Next(4); k < n; k++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            var path = tmp.File($"corrupt{i}.ckpt");
            File.Copy(Fixtures.Path_("svg_autoencoder.ckpt"), path);
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            {
                zip.GetEntry("archive/data.pkl")!.Delete();
                using var w = zip.CreateEntry("archive/data.pkl", CompressionLevel.NoCompression).Open();
                w.Write(bytes);
            }
            try
            {
                using var ckpt = TorchCheckpoint.Open(path);
                using var scope = NewDisposeScope();
                ckpt.ReadStateDict(ckpt.Entry("state_dict"));
            }
            catch (CheckpointFormatException) { failures++; } // includes UnsafeCheckpointException
        }
        Assert.True(failures > 100, $"only {failures} of 150 corrupted pickles were rejected");
    }

    [Fact]
    public void AllowList_CannotBeExtendedWithCodeExecutionPrimitives()
    {
        Assert.Throws<ArgumentException>(() => PickleAllowList.Default.With("os.system"));
        Assert.Throws<ArgumentException>(() => PickleAllowList.Default.With("builtins.eval"));
        Assert.Throws<ArgumentException>(() => PickleAllowList.Default.With("subprocess.Popen"));
        Assert.Null(PickleAllowList.Default.With("mytrainer.config.RunConfig").Check("mytrainer.config", "RunConfig"));
        Assert.NotNull(PickleAllowList.Default.Check("mytrainer.config", "RunConfig"));
        Assert.Null(PickleAllowList.Default.Check("torch._utils", "_rebuild_tensor_v2"));
    }

    [Fact]
    public void UnknownDataGlobal_IsRefusedUnlessAllowed()
    {
        // omegaconf's DictConfig is allowed by default; refusing it shows the list is enforced, and With() lifts it.
        var strict = PickleAllowList.Default.Without("omegaconf.dictconfig.DictConfig");
        var e = Assert.Throws<UnsafeCheckpointException>(() => TorchCheckpoint.Open(Fixtures.Path_("svg_autoencoder.ckpt"), strict));
        Assert.Equal("omegaconf.dictconfig.DictConfig", e.Global);
        Assert.Contains("not on the allow-list", e.Message);
        Assert.Contains("PickleAllowList.With", e.Message);
        using var lenient = TorchCheckpoint.Open(Fixtures.Path_("svg_autoencoder.ckpt"), strict.With("omegaconf.dictconfig.DictConfig"));
        Assert.Contains("omegaconf.dictconfig.DictConfig", lenient.Globals);
    }

    [Fact]
    public void MissingFile_FileNotFound()
    {
        var path = Path.Combine(Path.GetTempPath(), "svgml-no-such-checkpoint.pth");
        var e = Assert.Throws<FileNotFoundException>(() => OfficialCheckpoints.LoadDinoV3(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void ZeroByteFile_IsReportedAsEmpty()
    {
        using var tmp = new TempFolder();
        var path = tmp.File("empty.pt");
        File.WriteAllBytes(path, []);
        var e = Assert.Throws<CheckpointFormatException>(() => OfficialCheckpoints.LoadSvgDiT(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("empty (0 bytes)", e.Message);
    }

    [Fact]
    public void TruncatedZip_IsReportedAsTruncated()
    {
        using var tmp = new TempFolder();
        var path = tmp.File("truncated.pth");
        var bytes = File.ReadAllBytes(Fixtures.Path_("dinov3_tiny.pth"));
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<CheckpointFormatException>(() => OfficialCheckpoints.LoadDinoV3(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void TruncatedSafetensors_IsReportedAsTruncated()
    {
        using var tmp = new TempFolder();
        var path = tmp.File("truncated.safetensors");
        var bytes = File.ReadAllBytes(Fixtures.Path_("dinov3_tiny_hf/model.safetensors"));
        File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
        var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.ReadTensors(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        File.WriteAllBytes(path, bytes[..200]); // cut inside the JSON header
        e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.ReadTensors(path));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void MissingStorageRecord_IsReported()
    {
        using var tmp = new TempFolder();
        var path = tmp.File("no-storage.pt");
        File.Copy(Fixtures.Path_("svg_dit_ema.pt"), path);
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Update)) zip.GetEntry("archive/data/3")!.Delete();
        var e = Assert.Throws<CheckpointFormatException>(() => OfficialCheckpoints.LoadSvgDiT(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("'data/3'", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void NotACheckpoint_TextFile_IsReported()
    {
        using var tmp = new TempFolder();
        var path = tmp.File("notes.pt");
        File.WriteAllText(path, "these are not the weights you are looking for\n");
        var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.ReadTensors(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("neither a torch.save zip archive nor a safetensors file", e.Message);
    }

    [Fact]
    public void BarePickleAndLegacyTorchSave_AreReportedAsUnsupported()
    {
        using var tmp = new TempFolder();
        var bare = tmp.File("bare.pkl");
        File.WriteAllBytes(bare, [0x80, 0x02, (byte)'}', (byte)'.']);
        Assert.Contains("bare pickle", Assert.Throws<CheckpointFormatException>(() => Checkpoint.ReadTensors(bare)).Message);
        var legacy = tmp.File("legacy.pth"); // pickled magic number 0x1950a86a20f9469cfc6c, as torch.save wrote before 1.6
        File.WriteAllBytes(legacy, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, (byte)'.']);
        Assert.Contains("legacy", Assert.Throws<CheckpointFormatException>(() => Checkpoint.ReadTensors(legacy)).Message);
    }

    [Fact]
    public void ZipWithoutDataPkl_IsReported()
    {
        using var tmp = new TempFolder();
        var path = tmp.File("other.zip");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create)) zip.CreateEntry("readme.txt");
        var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.ReadTensors(path));
        Assert.Contains("no <name>/data.pkl", e.Message);
    }

    [Fact]
    public void WrongShapes_AreAllListedAgainstTheModule()
    {
        var weights = OfficialCheckpoints.LoadSvgDiT(Fixtures.Path_("svg_dit_ema.pt"));
        var shapes = weights.Select(kv => (kv.Key, kv.Value.shape)).ToList();
        shapes[0] = (shapes[0].Key, new long[] { 1, 5, 8 });      // pos_embed
        shapes[6] = (shapes[6].Key, new long[] { 8, 7 });         // ln1.weight
        using var module = new KeyedModule(shapes);
        var e = Assert.Throws<CheckpointMismatchException>(() => StateDict.Load(module, weights, source: "svg_dit_ema.pt"));
        Assert.Equal(2, e.ShapeMismatches.Count);
        Assert.Contains("pos_embed: checkpoint [1,4,8] vs model [1,5,8]", e.ShapeMismatches);
        Assert.Contains("ln1.weight: checkpoint [8,6] vs model [8,7]", e.ShapeMismatches);
        Assert.Contains("svg_dit_ema.pt", e.Message);
    }

    [Fact]
    public void MissingKeys_AreListed()
    {
        var weights = OfficialCheckpoints.LoadSvgDiT(Fixtures.Path_("svg_dit_ema.pt"));
        using var module = new KeyedModule(weights.Select(kv => (kv.Key, kv.Value.shape)).Append(("blocks.1.attn.qkv.weight", new long[] { 24, 8 })));
        var e = Assert.Throws<CheckpointMismatchException>(() => StateDict.Load(module, weights));
        Assert.Equal(["blocks.1.attn.qkv.weight"], e.Missing);
        Assert.Empty(e.Unexpected);
    }

    [Fact]
    public void UnexpectedKeys_AreListed()
    {
        var weights = OfficialCheckpoints.LoadSvgDiT(Fixtures.Path_("svg_dit_ema.pt"));
        using var module = new KeyedModule(weights.Where(kv => !kv.Key.StartsWith("final_layer.")).Select(kv => (kv.Key, kv.Value.shape)));
        var e = Assert.Throws<CheckpointMismatchException>(() => StateDict.Load(module, weights));
        Assert.Equal(4, e.Unexpected.Count);
        Assert.All(e.Unexpected, k => Assert.StartsWith("final_layer.", k));
        Assert.Empty(e.Missing);
    }

    [Fact]
    public void NotDinoWeights_AreReportedAsSuch()
    {
        var e = Assert.Throws<CheckpointFormatException>(() => OfficialCheckpoints.LoadDinoV3(Fixtures.Path_("svg_dit_ema.pt")));
        Assert.Contains("not DINOv3 backbone weights", e.Message);
        var e2 = Assert.Throws<CheckpointFormatException>(() => OfficialCheckpoints.LoadSvgAutoencoder(Fixtures.Path_("svg_dit_ema.pt")));
        Assert.Contains("no decoder.* weights", e2.Message);
        var e3 = Assert.Throws<CheckpointFormatException>(() => OfficialCheckpoints.LoadFeatureStatistics(Fixtures.Path_("svg_dit_ema.pt")));
        Assert.Contains("dinov3_sp_mean", e3.Message);
    }
}
