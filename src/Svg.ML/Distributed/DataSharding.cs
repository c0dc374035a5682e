using Svg.ML.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Distributed;

/// <summary>
/// How data and randomness are split over ranks so that N ranks with per-rank batch B follow the same trajectory as one
/// process with batch N·B:
/// <list type="bullet">
/// <item>weights: every rank builds its modules from the same seed (<c>TrainingRandom.Init</c>), so they start equal
///   and stay equal (every rank applies the same averaged gradient);</item>
/// <item>data order: every rank draws the same epoch permutation (same seed) and cuts the same global batch of N·B
///   rows from it; rank r takes rows [r·B, (r+1)·B) of that batch — distinct per rank, deterministic, and together
///   exactly the one-process batch;</item>
/// <item>noise: every rank draws the noise of the whole global batch from the same generator and keeps its rows, so
///   the generator state stays equal on all ranks and the draws equal the one-process ones.</item>
/// </list>
/// </summary>
public static class DataSharding
{
    /// <summary>Rank <paramref name="rank"/>'s rows of a global batch (contiguous, <c>length / worldSize</c> rows).</summary>
    public static long[] RankBatch(long[] globalBatch, int rank, int worldSize)
    {
        CheckRank(rank, worldSize);
        if (globalBatch.Length % worldSize != 0)
            throw new ArgumentException($"A global batch of {globalBatch.Length} rows does not split over {worldSize} ranks.");
        int b = globalBatch.Length / worldSize;
        return globalBatch.AsSpan(rank * b, b).ToArray();
    }

    /// <summary>
    /// Rank <paramref name="rank"/>'s contiguous share of <paramref name="count"/> rows (e.g. for featurization): the
    /// first <c>count mod worldSize</c> ranks get one row more. The shares of all ranks cover the rows once, in order.
    /// </summary>
    public static (long Start, long Count) Shard(long count, int rank, int worldSize)
    {
        CheckRank(rank, worldSize);
        long size = count / worldSize, extra = count % worldSize;
        long start = rank * size + Math.Min(rank, extra);
        return (start, size + (rank < extra ? 1 : 0));
    }

    /// <summary>
    /// This rank's share of the flow-matching noise of a global batch: draws <see cref="RectifiedFlow.DrawNoise"/> for
    /// <paramref name="globalShape"/> (all ranks, same generator state) and keeps rows [r·B, (r+1)·B).
    /// </summary>
    public static FlowNoise RankNoise(long[] globalShape, ScalarType dtype, Device device, bool labelDropout,
                                      Generator generator, int rank, int worldSize)
    {
        CheckRank(rank, worldSize);
        long b = globalShape[0] / worldSize;
        var all = RectifiedFlow.DrawNoise(globalShape, dtype, device, labelDropout, generator);
        return new FlowNoise(all.Z0!.narrow(0, rank * b, b), all.TRaw!.narrow(0, rank * b, b),
                             all.LabelDropUniforms?.narrow(0, rank * b, b));
    }

    static void CheckRank(int rank, int worldSize)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), $"Rank {rank} of {worldSize} is not valid.");
    }
}
