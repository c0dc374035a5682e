using Svg.ML.Checkpoints;
using Svg.ML.Diffusion;
using Svg.ML.DistributedHost;
using Svg.ML.Training;
using Svg.ML.Tests.Training;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Distributed;

/// <summary>
/// Data-parallel stage-2 training on 2 MPI ranks (loopback, <see cref="MpiLauncher"/>; skipped without MPICH): the
/// trajectory equals one process with the global batch, both ranks hold the same weights, stop + resume equals an
/// uninterrupted run, a NaN on one rank stops every rank, and a checkpoint refuses another number of ranks.
/// </summary>
[Collection(SerialTrainingCollection.Name)]
public sealed class DistributedTrainingTests(ITestOutputHelper output)
{
    const int Steps = 6, PerRankBatch = 4;

    static Dictionary<string, Tensor> Load(string dir, int rank) => SafeTensors.Load(Path.Combine(dir, $"rank{rank}.safetensors")).Tensors;

    static (int, string) Launch(params string[] args)
    {
        var (code, log) = MpiLauncher.Run(2, args);
        Assert.True(code == 0, $"mpiexec exit code {code}:\n{log}");
        return (code, log);
    }

    [SkippableFact]
    public void TwoRanks_WithBatchB_FollowOneProcess_WithBatch2B()
    {
        MpiLauncher.SkipIfUnavailable();
        using var dir = new TempDirectory();
        Launch("diffusion", dir.Path, Steps.ToString(), PerRankBatch.ToString(), "-");

        var rank0 = Load(dir.Path, 0);
        var rank1 = Load(dir.Path, 1);
        foreach (var (name, w) in rank0)   // every rank applied the same averaged gradient
            Assert.True(w.allclose(rank1[name], 0, 0), $"ranks differ in {name}");
        Assert.Equal(MpiLauncher.Losses(dir.Path, 0), MpiLauncher.Losses(dir.Path, 1));
        // Rank 0's log says where every rank runs, which rows of the global batch it takes, and how gradients travel.
        string report = string.Join("\n", MpiLauncher.Report(dir.Path, 0));
        Assert.Contains("gradients averaged through host memory", report);
        Assert.Matches(@"MPI rank 1 of 2 \(local rank 1 [^)]*\): device cpu, rows \[4, 8\) of each global batch", report);

        using var reference = DiffusionTraining.Train(Scenarios.Features(32), Scenarios.Diffusion(Steps, 2 * PerRankBatch, null, null));
        var losses = MpiLauncher.Losses(dir.Path, 0);
        Assert.Equal(Steps, losses.Length);
        // The two runs differ only in float rounding: a 4-row matmul/mean per rank + MPI sum vs one 8-row batch
        // (and 1 vs 2 libtorch threads). Losses are O(1); 1e-5 relative is ~100× the float32 rounding seen (~1e-7).
        double lossError = losses.Zip(reference.LossHistory, (a, b) => Math.Abs(a - b) / Math.Abs(b)).Max();
        double weightError = WeightError(rank0, Scenarios.Weights(reference));
        output.WriteLine($"2 ranks × batch {PerRankBatch} vs 1 process × batch {2 * PerRankBatch}, {Steps} steps: " +
                         $"max relative loss difference {lossError:E2}, ‖Δw‖/‖w − w0‖ = {weightError:E2}");
        Assert.True(lossError < 1e-5, $"losses differ by {lossError:E2} (relative)");
        Assert.True(weightError < 1e-4, $"weights differ by {weightError:E2} of the distance moved");
    }

    /// <summary>
    /// ‖w − w_ref‖ / ‖w_ref − w0‖ over the DiT weights ("model." names; w0: the seed-42 initialisation): the difference
    /// relative to how far training moved them (Adam moves every weight by ~lr per step; rounding can flip the sign of a
    /// near-zero gradient's update, so a per-weight bound would be meaningless).
    /// </summary>
    static double WeightError(Dictionary<string, Tensor> weights, Dictionary<string, Tensor> reference)
    {
        using var scope = NewDisposeScope();
        using var initial = TrainingRandom.WithGlobalSeed(TrainingRandom.Derive(42, TrainingRandom.Init), () => new SvgDiT(Scenarios.TinyDiT));
        var start = initial.state_dict();
        double diff = 0, moved = 0;
        foreach (var (name, w) in reference.Where(kv => kv.Key.StartsWith("model.", StringComparison.Ordinal)))
        {
            diff += (weights[name] - w).pow(2).sum().item<float>();
            moved += (w - start[name["model.".Length..]]).pow(2).sum().item<float>();
        }
        return Math.Sqrt(diff / moved);
    }

    [SkippableFact]
    public void MLNetEstimator_TwoRanksWithBatchB_FollowOneProcessWithBatch2B()
    {
        MpiLauncher.SkipIfUnavailable();
        using var dir = new TempDirectory();
        string checkpoints = dir.File("checkpoints");
        Launch("mlnet", dir.Path, Steps.ToString(), PerRankBatch.ToString(), checkpoints);
        // The estimator found the MPI launch by itself (Options.ProcessGroup left null) and logged both ranks.
        string report = string.Join("\n", MpiLauncher.Report(dir.Path, 0));
        Assert.Matches(@"MPI rank 1 of 2 \(local rank 1 [^)]*\): device cpu, rows \[4, 8\) of each global batch", report);
        // Both ranks' generators hold the same weights: the same samples, bitwise.
        Assert.True(Load(dir.Path, 0)["samples"].allclose(Load(dir.Path, 1)["samples"], 0, 0), "the ranks' generators differ");

        MLNetScenario.Fit(Steps, 2 * PerRankBatch, dir.File("reference")).Dispose();   // one process: no MPI launch detected
        using var distributed = TrainingCheckpoint.LoadLatest(checkpoints, TrainingStage.Diffusion)!;
        using var reference = TrainingCheckpoint.LoadLatest(dir.File("reference"), TrainingStage.Diffusion)!;
        Assert.Equal(2, distributed.State["world_size"]!.GetValue<int>());
        var losses = distributed.Get(TrainingCheckpoint.LossHistoryKey).data<float>().ToArray();
        var expected = reference.Get(TrainingCheckpoint.LossHistoryKey).data<float>().ToArray();
        Assert.Equal(Steps, losses.Length);
        // Tolerances and their reasons: as in TwoRanks_WithBatchB_FollowOneProcess_WithBatch2B (float rounding only).
        double lossError = losses.Zip(expected, (a, b) => Math.Abs(a - b) / Math.Abs(b)).Max();
        double weightError = WeightError(distributed.Tensors, reference.Tensors);
        output.WriteLine($"ML.NET estimator, 2 ranks × batch {PerRankBatch} vs 1 process × batch {2 * PerRankBatch}, {Steps} steps: " +
                         $"max relative loss difference {lossError:E2}, ‖Δw‖/‖w − w0‖ = {weightError:E2}");
        Assert.True(lossError < 1e-5, $"losses differ by {lossError:E2} (relative)");
        Assert.True(weightError < 1e-4, $"weights differ by {weightError:E2} of the distance moved");
    }

    [SkippableFact]
    public void TwoRanks_StoppedAndResumed_EqualAnUninterruptedRun_AndRefuseAnotherRankCount()
    {
        MpiLauncher.SkipIfUnavailable();
        using var whole = new TempDirectory();
        using var parts = new TempDirectory();
        string checkpoints = parts.File("checkpoints");
        Launch("diffusion", whole.Path, Steps.ToString(), PerRankBatch.ToString(), whole.File("checkpoints"));
        Launch("diffusion", parts.File("first"), "3", PerRankBatch.ToString(), checkpoints);
        Launch("diffusion", parts.Path, Steps.ToString(), PerRankBatch.ToString(), checkpoints);

        Assert.Contains("resumed 3", MpiLauncher.Report(parts.Path, 0));
        Assert.Contains("resumed 3", MpiLauncher.Report(parts.Path, 1));
        Assert.Equal(MpiLauncher.Losses(whole.Path, 0), MpiLauncher.Losses(parts.Path, 0));   // bitwise on the CPU
        var a = Load(whole.Path, 0);
        var b = Load(parts.Path, 0);
        foreach (var (name, w) in a) Assert.True(w.allclose(b[name], 0, 0), $"resumed run differs in {name}");
        Assert.Single(Directory.GetFiles(checkpoints, "diffusion-step000000006*"));   // rank 0 alone wrote it

        // One process cannot continue a 2-rank checkpoint: the error names both counts.
        var e = Assert.Throws<TrainingResumeException>(() =>
            DiffusionTraining.Train(Scenarios.Features(32), Scenarios.Diffusion(8, PerRankBatch, checkpoints, null)));
        Assert.Contains("2 rank(s) and this run has 1", e.Message);
    }

    [SkippableFact]
    public void Autoencoder_TwoRanks_StayInStep_AndStopPlusResumeEqualsAnUninterruptedRun()
    {
        MpiLauncher.SkipIfUnavailable();
        using var whole = new TempDirectory();
        using var parts = new TempDirectory();
        string checkpoints = parts.File("checkpoints");
        Launch("autoencoder", whole.Path, "4", "4", "-");
        Launch("autoencoder", parts.File("first"), "2", "4", checkpoints);
        Launch("autoencoder", parts.Path, "4", "4", checkpoints);

        var w0 = Load(whole.Path, 0);
        var w1 = Load(whole.Path, 1);
        foreach (var (name, w) in w0) Assert.True(w.allclose(w1[name], 0, 0), $"ranks differ in {name}");
        // The ranks draw dropout/mask noise from their own streams, saved per rank: the resumed run is bitwise the same.
        Assert.Contains("resumed 2", MpiLauncher.Report(parts.Path, 1));
        Assert.Equal(MpiLauncher.Losses(whole.Path, 0), MpiLauncher.Losses(parts.Path, 0));
        var resumed = Load(parts.Path, 1);
        foreach (var (name, w) in w0) Assert.True(w.allclose(resumed[name], 0, 0), $"resumed run differs in {name}");
    }

    [SkippableFact]
    public void NaN_OnOneRank_StopsEveryRank_AtTheSameStep()
    {
        MpiLauncher.SkipIfUnavailable();
        using var dir = new TempDirectory();
        Launch("nan", dir.Path, "8", PerRankBatch.ToString(), "-");
        var stops = Enumerable.Range(0, 2)
            .Select(r => MpiLauncher.Report(dir.Path, r).SingleOrDefault(l => l.StartsWith("diverged at step ", StringComparison.Ordinal)))
            .ToArray();
        Assert.All(stops, s => Assert.NotNull(s));
        string Step(string line) => line.Split(':')[0];
        Assert.Equal(Step(stops[0]!), Step(stops[1]!));
        output.WriteLine(stops[0]);
    }
}
