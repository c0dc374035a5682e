using Svg.ML.Data;
using Svg.ML.Encoders;
using Svg.ML.Tests.Training;
using Xunit;
using Xunit.Abstractions;

namespace Svg.ML.Tests.Distributed;

/// <summary>Featurization shared by 2 MPI ranks writes the cache entry one process writes (skipped without MPICH).</summary>
[Collection(SerialTrainingCollection.Name)]
public sealed class ShardedFeaturizationTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void TwoRanks_WriteTheEntryOneProcessWrites()
    {
        MpiLauncher.SkipIfUnavailable();
        using var dir = new TempDirectory();
        string shared = dir.File("cache");
        // 7 items in chunks of 2: 4 chunks, 2 per rank, the last one short.
        var (code, log) = MpiLauncher.Run(2, "featurize", dir.File("out"), "7", "2", shared);
        Assert.True(code == 0, log);
        string path = MpiLauncher.Report(dir.File("out"), 0).Single(l => l.StartsWith("entry ", StringComparison.Ordinal))["entry ".Length..];
        Assert.Equal(path, MpiLauncher.Report(dir.File("out"), 1).Single(l => l.StartsWith("entry ", StringComparison.Ordinal))["entry ".Length..]);
        Assert.Equal(2, Directory.GetFiles(shared).Length);   // the entry and its manifest; the parts are gone

        using var data = FashionMnist.Load(limit: 7);
        using var encoder = ResNet18.FromModelDirectory();
        var single = new FeatureCache(dir.File("single")).GetOrEncode(encoder, data, imageSize: 64, batchSize: 2);
        Assert.Equal(Path.GetFileName(single.Path), Path.GetFileName(path));   // same key
        var sharded = new FeatureCache(shared).TryOpen(single.Key)!;
        Assert.Equal(single.Shape, sharded.Shape);
        using var a = single.ReadAll();
        using var b = sharded.ReadAll();
        // Each chunk holds the same rows as in one process; the ranks run 1 libtorch thread, this process 2, which may
        // block float sums differently: 1e-5 of the largest magnitude (as FeatureCacheTests); a wrong row is O(1) off.
        float scale = a.abs().max().item<float>(), worst = (a - b).abs().max().item<float>();
        output.WriteLine($"sharded vs one process: max abs difference {worst:G3} (values up to {scale:G3}); bitwise equal: {a.allclose(b, 0, 0)}");
        Assert.True(worst <= 1e-5f * scale, $"max abs difference {worst:G3} for values up to {scale:G3}");
    }
}
