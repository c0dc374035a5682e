using System.Text.Json.Nodes;
using Svg.ML.Checkpoints;
using Svg.ML.Data;
using Svg.ML.Encoders;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Data;

public class FeatureCacheTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "svgml-cache-" + Guid.NewGuid().ToString("N"));
    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true); }

    static FeatureCacheKey Key => new("enc", "w0", "cfg", 224, "data0", "pre0");

    static Tensor Features(long n) => arange(n * 6, dtype: ScalarType.Float32).view(n, 2, 3) * 0.5f;

    [Fact]
    public void GetOrCompute_ComputesOnce_ThenReadsTheSafetensorsEntry()
    {
        var cache = new FeatureCache(_dir);
        int calls = 0;
        using var a = cache.GetOrCompute(Key, () => { calls++; return Features(5); });
        using var b = cache.GetOrCompute(Key, () => { calls++; return Features(5); });
        Assert.Equal(1, calls);
        Assert.Equal(a.data<float>().ToArray(), b.data<float>().ToArray());
        Assert.Equal(new long[] { 5, 2, 3 }, b.shape);

        // The entry is a plain safetensors file plus a JSON manifest naming the key.
        string data = Path.Combine(_dir, Key.Hash + ".safetensors");
        var loaded = SafeTensors.Load(data);
        Assert.Equal(a.data<float>().ToArray(), loaded.Tensors["features"].data<float>().ToArray());
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, Key.Hash + ".json")))!;
        Assert.Equal("enc", manifest["key"]!["encoder_name"]!.GetValue<string>());
        Assert.Equal(new[] { Key.Hash + ".json", Key.Hash + ".safetensors" }, Directory.GetFiles(_dir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void AnyKeyFieldChange_MissesTheCache()
    {
        var cache = new FeatureCache(_dir);
        int calls = 0;
        Tensor Compute() { calls++; return Features(2); }
        cache.GetOrCompute(Key, Compute).Dispose();
        var variants = new[]
        {
            Key with { EncoderName = "enc2" }, Key with { WeightsFingerprint = "w1" }, Key with { EncoderConfig = "cfg2" },
            Key with { ImageSize = 256 }, Key with { DataIdentity = "data1" }, Key with { Preprocessing = "pre1" },
        };
        Assert.Equal(variants.Length, variants.Select(v => v.Hash).Append(Key.Hash).Distinct().Count() - 1);
        foreach (var v in variants) cache.GetOrCompute(v, Compute).Dispose();
        Assert.Equal(1 + variants.Length, calls);
        cache.GetOrCompute(Key, Compute).Dispose();
        Assert.Equal(1 + variants.Length, calls);
    }

    [Fact]
    public void Chunked_StreamsToDisk_AndReadsRowRanges()
    {
        var cache = new FeatureCache(_dir);
        var requests = new List<(long, long)>();
        using var all = Features(10);
        var entry = cache.GetOrCompute(Key, count: 10, chunkSize: 3, (s, n) => { requests.Add((s, n)); return all.narrow(0, s, n).clone(); });
        Assert.Equal(new[] { (0L, 3L), (3L, 3L), (6L, 3L), (9L, 1L) }, requests);
        Assert.Equal(new long[] { 10, 2, 3 }, entry.Shape);
        using (var back = entry.ReadAll()) Assert.Equal(all.data<float>().ToArray(), back.data<float>().ToArray());
        using (var mid = entry.Read(4, 5)) Assert.Equal(all.narrow(0, 4, 5).data<float>().ToArray(), mid.data<float>().ToArray());
        var chunks = entry.Chunks(4).ToList();
        Assert.Equal(new long[] { 0, 4, 8 }, chunks.Select(c => c.Start).ToArray());
        Assert.Equal(all.data<float>().ToArray(), chunks.SelectMany(c => c.Rows.data<float>().ToArray()).ToArray());
        foreach (var c in chunks) c.Rows.Dispose();

        var again = cache.GetOrCompute(Key, 10, 3, (s, n) => throw new InvalidOperationException("must not recompute"));
        Assert.Equal(entry.Shape, again.Shape);
    }

    [Fact]
    public void DamagedEntry_IsRecomputed_FailedComputation_LeavesNothing()
    {
        var cache = new FeatureCache(_dir);
        cache.GetOrCompute(Key, () => Features(4)).Dispose();
        string data = Path.Combine(_dir, Key.Hash + ".safetensors");
        using (var f = File.OpenWrite(data)) f.SetLength(f.Length - 4);
        Assert.Null(cache.TryOpen(Key));
        int calls = 0;
        cache.GetOrCompute(Key, () => { calls++; return Features(4); }).Dispose();
        Assert.Equal(1, calls);
        Assert.NotNull(cache.TryOpen(Key));

        var other = Key with { DataIdentity = "broken" };
        Assert.Throws<InvalidOperationException>(() =>
            cache.GetOrCompute(other, 6, 2, (s, n) => s < 4 ? Features(n) : throw new InvalidOperationException("encoder failed")));
        Assert.Null(cache.TryOpen(other));
        Assert.DoesNotContain(Directory.GetFiles(_dir), f => f.Contains(".tmp-") || f.Contains(other.Hash));
        // A chunk of the wrong size is refused.
        Assert.Throws<InvalidOperationException>(() => cache.GetOrCompute(other, 4, 2, (s, n) => Features(n + 1)));
    }

    [Fact]
    public void WeightsFingerprint_ChangesWithAnyWeight()
    {
        using var m = new ResNet18(ResNetConfig.MlNetResNet18 with { Widths = new[] { 4, 4, 8, 8 }, Layers = new[] { 1, 1, 1, 1 } });
        string f0 = FeatureCacheKey.FingerprintWeights(m);
        Assert.Equal(f0, FeatureCacheKey.FingerprintWeights(m));
        using (no_grad()) m.layer3.parameters().First().view(-1)[0].add_(1e-3f);
        Assert.NotEqual(f0, FeatureCacheKey.FingerprintWeights(m));
    }

    [Fact]
    public void GetOrEncode_CachesResNet18GridsOfFashionMnist()
    {
        using var data = FashionMnist.Load(limit: 5);
        using var encoder = ResNet18.FromModelDirectory();
        var cache = new FeatureCache(_dir);
        var entry = cache.GetOrEncode(encoder, data, imageSize: 64, batchSize: 2);
        Assert.Equal(new long[] { 5, 256, 4, 4 }, entry.Shape);
        using var cached = entry.ReadAll();
        using var direct = WithNoGrad(() => encoder.EncodeGrid(encoder.Preprocess(data.Images(0, 5, 64))));
        // The cache encodes in batches of 2, the reference in one batch of 5: the same convolutions with differently
        // blocked float sums (oneDNN reorders them by batch size, the reference path less so). Agreement is asked
        // relative to the values' scale (stage-3 values reach ~16): 1e-5 of the largest magnitude, ~80 float32 ulps;
        // a wrong row or batch would differ by O(1).
        float scale = direct.abs().max().item<float>();
        float worst = (cached - direct).abs().max().item<float>();
        Assert.True(worst <= 1e-5f * scale, $"cached vs direct: max abs difference {worst:G3} for values up to {scale:G3}");
        var stamp = File.GetLastWriteTimeUtc(entry.Path);
        var again = cache.GetOrEncode(encoder, data, imageSize: 64, batchSize: 2);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(again.Path));
        // Other data (a subset) is another entry.
        Assert.NotEqual(entry.Path, cache.GetOrEncode(encoder, data.Take(2), imageSize: 64).Path);
    }

    static Tensor WithNoGrad(Func<Tensor> f) { using var _ = no_grad(); return f(); }
}
