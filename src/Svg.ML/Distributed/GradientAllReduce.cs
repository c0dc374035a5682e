using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Distributed;

/// <summary>
/// Averages gradients over the ranks of a <see cref="ProcessGroup"/> after <c>backward()</c> and before the optimiser
/// step (what PyTorch's DDP does): the parameters are split into buckets of about <see cref="DefaultBucketBytes"/>
/// (in reverse order, the order backward produces them); each bucket's gradients are flattened into one float32 host
/// buffer, summed across ranks with one in-place <c>MPI_Allreduce</c>, divided by the number of ranks and copied back.
/// <para>
/// GPU gradients go through host memory (device → host → MPI → device): MPI.NET has no CUDA-aware path.
/// The all-reduce runs after backward, not overlapped with it: TorchSharp 0.107 exposes no per-tensor autograd hooks
/// (<c>register_hook</c>) that would tell when a bucket's gradients are ready, and MPI.NET 1.4 has no non-blocking
/// collectives (<c>MPI_Iallreduce</c>).
/// </para>
/// A parameter without a gradient on a rank (unused in its loss) contributes zeros and receives the average, so every
/// rank applies the same update.
/// </summary>
public sealed class GradientAllReduce : IDisposable
{
    /// <summary>Bucket size, as DDP's default <c>bucket_cap_mb = 25</c>.</summary>
    public const long DefaultBucketBytes = 25L << 20;

    readonly ProcessGroup _group;
    readonly Parameter[] _parameters;
    readonly List<(int Start, int Count, long Numel)> _buckets = new();
    readonly Tensor _host;
    readonly Stopwatch _watch = new();

    /// <summary>Prepares the buckets for <paramref name="parameters"/> (the trainable ones, in any fixed order that is
    /// the same on every rank).</summary>
    public GradientAllReduce(ProcessGroup group, IEnumerable<Parameter> parameters, long bucketBytes = DefaultBucketBytes)
    {
        if (bucketBytes < 4) throw new ArgumentOutOfRangeException(nameof(bucketBytes));
        _group = group;
        _parameters = parameters.Reverse().ToArray();
        long limit = Math.Min(bucketBytes, int.MaxValue) / sizeof(float);   // one MPI call carries < 2 GiB
        int start = 0;
        long numel = 0;
        for (int i = 0; i < _parameters.Length; i++)
        {
            long n = _parameters[i].numel();
            if (i > start && numel + n > limit)
            {
                _buckets.Add((start, i - start, numel));
                start = i;
                numel = 0;
            }
            numel += n;
        }
        if (_parameters.Length > start) _buckets.Add((start, _parameters.Length - start, numel));
        ParameterCount = _parameters.Sum(p => p.numel());
        long largest = _buckets.Count == 0 ? 0 : _buckets.Max(b => b.Numel);
        if (largest > int.MaxValue / sizeof(float)) throw new ArgumentException($"A parameter has {largest} elements, more than one MPI call can carry (2 GiB).");
        _host = zeros(largest, ScalarType.Float32, CPU);
    }

    /// <summary>Elements all-reduced per step (the trainable parameters); ×4 bytes in float32.</summary>
    public long ParameterCount { get; }

    /// <summary>Number of buckets (MPI calls per step).</summary>
    public int BucketCount => _buckets.Count;

    /// <summary>Steps averaged so far.</summary>
    public long Calls { get; private set; }

    /// <summary>Wall time spent in <see cref="Average"/> (copies and MPI), summed over calls.</summary>
    public TimeSpan Elapsed => _watch.Elapsed;

    /// <summary>What the reducer does, for logs.</summary>
    public string Description =>
        $"gradient all-reduce over {_group.WorldSize} ranks: {ParameterCount:N0} float32 ({ParameterCount * 4 / 1048576.0:F1} MiB) " +
        $"in {BucketCount} bucket(s), through host memory, after backward";

    /// <summary>Replaces every parameter's gradient by its average over the ranks.</summary>
    public void Average()
    {
        Calls++;
        if (_group.WorldSize == 1) return;
        _watch.Start();
        try
        {
            using var _ = no_grad();
            foreach (var (start, count, numel) in _buckets)
            {
                using var scope = NewDisposeScope();
                var host = _host.narrow(0, 0, numel);
                long offset = 0;
                for (int i = start; i < start + count; i++)   // one copy per tensor into the host buffer
                {
                    var p = _parameters[i];
                    long n = p.numel();
                    var slice = host.narrow(0, offset, n);
                    if (p.grad is { } g) slice.copy_(g.reshape(-1));
                    else slice.zero_();
                    offset += n;
                }
                _group.AllReduceSum(host);
                host.div_(_group.WorldSize);
                offset = 0;
                for (int i = start; i < start + count; i++)
                {
                    var p = _parameters[i];
                    long n = p.numel();
                    var average = host.narrow(0, offset, n).view(p.shape);
                    if (p.grad is { } g) g.copy_(average);
                    else p.grad = average.to(p.dtype, p.device).clone().DetachFromDisposeScope();
                    offset += n;
                }
            }
        }
        finally { _watch.Stop(); }
    }

    /// <inheritdoc/>
    public void Dispose() => _host.Dispose();
}
