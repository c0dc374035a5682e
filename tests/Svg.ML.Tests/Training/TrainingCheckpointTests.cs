using System.Text.Json.Nodes;
using Svg.ML.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Training;

public class TrainingCheckpointTests
{
    static string WriteStep(string dir, long step, int keepLast = 0) =>
        TrainingCheckpoint.Write(dir, TrainingStage.Diffusion, step,
            new Dictionary<string, Tensor> { ["w"] = full(3, (float)step), [TrainingCheckpoint.LossHistoryKey] = zeros(step) },
            new JsonObject { ["note"] = $"step {step}" }, keepLast);

    [Fact]
    public void LeftoverTemporaryFiles_AreIgnored_AndThePreviousCheckpointLoads()
    {
        using var dir = new TempDirectory();
        string first = WriteStep(dir.Path, 1);

        // A crash while writing step 2: a partial temporary file (the rename never happened).
        string tmp = Path.Combine(dir.Path, TrainingCheckpoint.FileName(TrainingStage.Diffusion, 2) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        var bytes = File.ReadAllBytes(first);
        File.WriteAllBytes(tmp, bytes[..(bytes.Length / 2)]);
        // And a truncated file under a final name (e.g. a copy cut short): skipped when loading.
        File.WriteAllBytes(Path.Combine(dir.Path, TrainingCheckpoint.FileName(TrainingStage.Diffusion, 3)), bytes[..(bytes.Length - 5)]);

        var notes = new List<string>();
        using var latest = TrainingCheckpoint.LoadLatest(dir.Path, TrainingStage.Diffusion, notes.Add);
        Assert.NotNull(latest);
        Assert.Equal(1, latest!.Step);
        Assert.Equal(first, latest.Path);
        Assert.Equal("step 1", latest.State["note"]!.GetValue<string>());
        Assert.Equal(new[] { 1f, 1f, 1f }, latest.Get("w").data<float>().ToArray());
        Assert.Single(notes);
        Assert.Contains("step000000003", notes[0]);
        Assert.DoesNotContain(TrainingCheckpoint.List(dir.Path, TrainingStage.Diffusion), c => c.Path == tmp);
        Assert.Equal(1, TrainingCheckpoint.DeleteTemporaryFiles(dir.Path, TrainingStage.Diffusion));
        Assert.False(File.Exists(tmp));
    }

    [Fact]
    public void CheckpointFiles_AreStandardSafetensors()
    {
        using var dir = new TempDirectory();
        string path = WriteStep(dir.Path, 4);
        var contents = Svg.ML.Checkpoints.SafeTensors.Load(path);
        Assert.Equal(new[] { 4f, 4f, 4f }, contents.Tensors["w"].data<float>().ToArray());
        var state = JsonNode.Parse(contents.Metadata[TrainingCheckpoint.StateKey])!;
        Assert.Equal(4, state["step"]!.GetValue<long>());
        Assert.Equal("diffusion", state["stage"]!.GetValue<string>());
    }

    [Fact]
    public void FailedWrite_LeavesTheTargetUntouched_AndNoTemporaryFile()
    {
        using var dir = new TempDirectory();
        string path = dir.File("x.bin");
        File.WriteAllText(path, "old");
        Assert.Throws<InvalidOperationException>(() => TrainingCheckpoint.WriteAtomically(path, s =>
        {
            s.Write(new byte[100]);
            throw new InvalidOperationException("disk full");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void KeepLast_PrunesOldCheckpoints_AndThePointerNamesTheNewest()
    {
        using var dir = new TempDirectory();
        for (long s = 1; s <= 5; s++) WriteStep(dir.Path, s, keepLast: 2);
        Assert.Equal(new long[] { 4, 5 }, TrainingCheckpoint.List(dir.Path, TrainingStage.Diffusion).Select(c => c.Step));
        Assert.Equal(dir.File(TrainingCheckpoint.FileName(TrainingStage.Diffusion, 5)), TrainingCheckpoint.LatestPath(dir.Path, TrainingStage.Diffusion));
        var pointer = JsonNode.Parse(File.ReadAllText(TrainingCheckpoint.PointerPath(dir.Path, TrainingStage.Diffusion)))!;
        Assert.Equal(5, pointer["step"]!.GetValue<long>());
        // The other stage's files are separate.
        Assert.Empty(TrainingCheckpoint.List(dir.Path, TrainingStage.Autoencoder));
        Assert.Null(TrainingCheckpoint.LoadLatest(dir.Path, TrainingStage.Autoencoder));
    }

    [Fact]
    public void NonCheckpointFiles_AreReportedClearly()
    {
        using var dir = new TempDirectory();
        string path = dir.File(TrainingCheckpoint.FileName(TrainingStage.Diffusion, 1));
        Svg.ML.Checkpoints.SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = zeros(2) });
        var e = Assert.Throws<TrainingResumeException>(() => TrainingCheckpoint.Load(path));
        Assert.Contains("no training state", e.Message);
    }
}
