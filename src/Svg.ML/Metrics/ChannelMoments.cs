using static TorchSharp.torch;

namespace Svg.ML.Metrics;

/// <summary>
/// Streaming per-channel mean and unbiased std of features [B, C, ...] over all rows and positions, in float64, merged
/// batch by batch exactly (Chan et al.'s parallel update): the result equals the statistics of all data at once.
/// Used for the stored residual alignment and the featurizer's per-channel feature statistics.
/// </summary>
internal sealed class ChannelMoments : IDisposable
{
    long _count;
    Tensor? _mean, _m2;

    /// <summary>Values per channel seen so far.</summary>
    public long Count => _count;

    public void Add(Tensor features)
    {
        using var scope = NewDisposeScope();
        var x = features.detach().to(ScalarType.Float64).cpu().flatten(2).transpose(0, 1).reshape(features.shape[1], -1);   // [C, B·N]
        long n = x.shape[1];
        if (n == 0) return;
        var mean = x.mean(new long[] { 1 });
        var m2 = (x - mean.unsqueeze(1)).square().sum(1);
        if (_mean is null || _m2 is null)
        {
            (_count, _mean, _m2) = (n, mean, m2);
        }
        else
        {
            if (_mean.shape[0] != mean.shape[0]) throw new ArgumentException($"Channel count changed: {_mean.shape[0]} then {mean.shape[0]}.");
            long total = _count + n;
            var delta = mean - _mean;
            var merged = _mean + delta * ((double)n / total);
            var mergedM2 = _m2 + m2 + delta.square() * ((double)_count * n / total);
            _mean.Dispose(); _m2.Dispose();
            (_count, _mean, _m2) = (total, merged, mergedM2);
        }
        // Kept across calls (and across the callers' dispose scopes) until Dispose.
        _mean.DetachFromDisposeScope();
        _m2.DetachFromDisposeScope();
    }

    /// <summary>Per-channel mean and unbiased std (needs two values per channel).</summary>
    public (double[] Mean, double[] Std) Result()
    {
        if (_mean is null || _m2 is null || _count < 2) throw new InvalidOperationException("Feature statistics need at least two values per channel.");
        using var std = (_m2 / (_count - 1)).sqrt();
        return (_mean.data<double>().ToArray(), std.data<double>().ToArray());
    }

    /// <summary>(mean over channels of the per-channel mean, mean over channels of the per-channel unbiased std): the
    /// official <c>match_distribution</c> statistics.</summary>
    public (double Mean, double Std) ChannelAverages()
    {
        if (_mean is null || _m2 is null || _count < 2) throw new InvalidOperationException("Feature statistics need at least two values per channel.");
        using var std = (_m2 / (_count - 1)).sqrt();
        using var meanOfMeans = _mean.mean();
        using var meanOfStds = std.mean();
        return (meanOfMeans.item<double>(), meanOfStds.item<double>());
    }

    public void Dispose()
    {
        _mean?.Dispose();
        _m2?.Dispose();
    }
}
