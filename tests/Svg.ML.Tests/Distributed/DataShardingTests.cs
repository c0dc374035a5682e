using Svg.ML.Diffusion;
using Svg.ML.Distributed;
using Svg.ML.DistributedHost;
using Svg.ML.Training;
using Svg.ML.Tests.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Distributed;

/// <summary>The sharding rules (no MPI needed), and that one-process training never loads MPI.</summary>
[Collection(SerialTrainingCollection.Name)]
public sealed class DataShardingTests
{
    [Fact]
    public void Shards_CoverEveryRowOnce_InOrder()
    {
        foreach (var (count, world) in new[] { (10L, 3), (2L, 4), (0L, 2), (12L, 4) })
        {
            var rows = Enumerable.Range(0, world).SelectMany(r =>
            {
                var (start, n) = DataSharding.Shard(count, r, world);
                return Enumerable.Range(0, (int)n).Select(i => start + i);
            });
            Assert.Equal(Enumerable.Range(0, (int)count).Select(i => (long)i), rows);
        }
        long[] batch = [7, 3, 9, 1, 4, 0];
        Assert.Equal([7L, 3, 9], DataSharding.RankBatch(batch, 0, 2));
        Assert.Equal([1L, 4, 0], DataSharding.RankBatch(batch, 1, 2));
        Assert.Throws<ArgumentException>(() => DataSharding.RankBatch(batch, 0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => DataSharding.Shard(4, 2, 2));
        // Featurization: whole chunks of 2 rows per rank (7 rows: chunks {0,1} {2,3} | {4,5} {6}); 3 rows in chunks of 16: one chunk.
        Assert.Equal((0L, 4L), ShardedFeaturization.RankRows(7, 2, 0, 2));
        Assert.Equal((4L, 3L), ShardedFeaturization.RankRows(7, 2, 1, 2));
        Assert.Equal((0L, 3L), ShardedFeaturization.RankRows(3, 16, 0, 2));
        Assert.Equal((3L, 0L), ShardedFeaturization.RankRows(3, 16, 1, 2));
    }

    [Fact]
    public void RankNoise_OfAllRanks_IsTheGlobalBatchNoise_AndLeavesTheGeneratorAlike()
    {
        long[] shape = [6, 16, 8];
        using var g = new Generator(5);
        var whole = RectifiedFlow.DrawNoise(shape, ScalarType.Float32, CPU, labelDropout: true, g);
        using var after = g.get_state();
        for (int rank = 0; rank < 3; rank++)
        {
            using var gr = new Generator(5);
            var part = DataSharding.RankNoise(shape, ScalarType.Float32, CPU, true, gr, rank, 3);
            Assert.True(part.Z0!.allclose(whole.Z0!.narrow(0, 2 * rank, 2), 0, 0));
            Assert.True(part.TRaw!.allclose(whole.TRaw!.narrow(0, 2 * rank, 2), 0, 0));
            Assert.True(part.LabelDropUniforms!.allclose(whole.LabelDropUniforms!.narrow(0, 2 * rank, 2), 0, 0));
            using var state = gr.get_state();
            Assert.True(state.allclose(after, 0, 0));
        }
    }

    [Fact]
    public void DrawNoise_MakesTheDrawsOfLoss()
    {
        using var model = TrainingRandom.WithGlobalSeed(1, () => new SvgDiT(Scenarios.TinyDiT));
        model.train();
        var flow = new RectifiedFlow(model);
        using var x = randn(3, 16, 8, generator: new Generator(2));
        using var y = tensor(new long[] { 0, 1, 2 });
        using var ga = new Generator(9);
        using var gb = new Generator(9);
        using var a = flow.Loss(x, y, generator: ga);
        using var b = flow.Loss(x, y, noise: RectifiedFlow.DrawNoise(x.shape, x.dtype, x.device, true, gb));
        Assert.Equal(a.Loss.item<float>(), b.Loss.item<float>());
        Assert.True(a.LabelsUsed.allclose(b.LabelsUsed, 0, 0));
    }

    [Fact]
    public void AllGatherText_OfOneProcess_IsItsText_CutToTheByteBudget()
    {
        Assert.Equal(["rank 0: device cpu, é ✓"], ProcessGroup.Single.AllGatherText("rank 0: device cpu, é ✓"));
        Assert.Equal([new string('x', 16)], ProcessGroup.Single.AllGatherText(new string('x', 100), maxBytes: 64));
        Assert.Equal([""], ProcessGroup.Single.AllGatherText(""));
    }

    [Fact]
    public void OneProcessTraining_LoadsNoMpi()   // the core trainer and the ML.NET estimator
    {
        using var result = DiffusionTraining.Train(Scenarios.Features(16), Scenarios.Diffusion(2, 4, null, null));
        Assert.Equal(2, result.LossHistory.Count);
        using (var dir = new TempDirectory())   // the ML.NET estimator, whose process group is detected from the launch
            MLNetScenario.Fit(2, 4, dir.Path).Dispose();
        Assert.Same(ProcessGroup.Single, ProcessGroup.FromEnvironment());
        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name == "MPI");
        if (File.Exists("/proc/self/maps"))
            Assert.DoesNotContain("libmpi", File.ReadAllText("/proc/self/maps"));   // MPICH (libmpich) or OpenMPI (libmpi)
    }
}
