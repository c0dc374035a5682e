using System.Diagnostics;

namespace Svg.ML.Training;

/// <summary>
/// Turns per-step losses into <see cref="TrainingProgress"/> reports: a bias-corrected exponential moving average of
/// the loss, the throughput over a sliding window of recent steps, and the time left.
/// </summary>
public sealed class ProgressMeter
{
    /// <summary>Weight of the previous average in the smoothed loss.</summary>
    public const double SmoothingFactor = 0.98;

    /// <summary>Steps in the throughput window.</summary>
    const int Window = 50;

    readonly TrainingStage _stage;
    readonly long _totalSteps;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly Queue<(long Step, TimeSpan Time)> _recent = new();
    double _average;
    long _averaged;

    /// <summary>Starts the clock for a run going from <paramref name="startStep"/> completed steps to <paramref name="totalSteps"/>.</summary>
    public ProgressMeter(TrainingStage stage, long startStep, long totalSteps)
    {
        _stage = stage;
        _totalSteps = totalSteps;
        _recent.Enqueue((startStep, TimeSpan.Zero));
    }

    /// <summary>Wall time since the meter was created.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Records the completed step <paramref name="step"/> (1-based count) and builds its report.</summary>
    public TrainingProgress Record(long step, int epoch, double loss, double learningRate, IReadOnlyDictionary<string, double>? metrics = null)
    {
        var now = _clock.Elapsed;
        _recent.Enqueue((step, now));
        while (_recent.Count > Window + 1) _recent.Dequeue();

        // EMA with bias correction: avg_n = (1 − β) Σ β^(n−i) loss_i / (1 − β^n).
        _averaged++;
        _average = SmoothingFactor * _average + (1 - SmoothingFactor) * loss;
        double smoothed = _average / (1 - Math.Pow(SmoothingFactor, _averaged));

        var (firstStep, firstTime) = _recent.Peek();
        double seconds = (now - firstTime).TotalSeconds;
        double rate = seconds > 0 && step > firstStep ? (step - firstStep) / seconds : 0;
        TimeSpan? eta = rate > 0 ? TimeSpan.FromSeconds(Math.Max(0, _totalSteps - step) / rate) : null;
        return new TrainingProgress(_stage, step, _totalSteps, epoch, loss, smoothed, rate, eta, learningRate, now, metrics);
    }
}
