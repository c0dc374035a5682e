using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Svg.ML.Training;

/// <summary>
/// Shows <see cref="TrainingProgress"/> on the console. Interactive (a terminal): one line redrawn in place with
/// <c>\r</c> — a bar, step, loss (and its moving average), steps/s and ETA — at most every
/// <see cref="RedrawInterval"/>, ended by a newline after the last step. Redirected output (a file, a pipe, CI logs):
/// a plain line on the first step, then every <see cref="PlainInterval"/>, and on the last step.
/// Reports are handled synchronously on the caller's thread (unlike <see cref="Progress{T}"/>).
/// </summary>
public sealed class ConsoleProgressBar : IProgress<TrainingProgress>
{
    readonly TextWriter _writer;
    readonly object _gate = new();
    readonly Stopwatch _sinceLastWrite = new();
    int _lastLength;
    bool _lineOpen;
    string _lastLine = "";

    /// <summary>
    /// Creates a progress bar writing to <paramref name="writer"/> (default <see cref="Console.Out"/>).
    /// <paramref name="interactive"/> null decides from <see cref="Console.IsOutputRedirected"/> (writing to the console)
    /// or false (another writer).
    /// </summary>
    public ConsoleProgressBar(TextWriter? writer = null, bool? interactive = null, TimeSpan? plainInterval = null, int barWidth = 30)
    {
        _writer = writer ?? Console.Out;
        Interactive = interactive ?? (writer is null && !Console.IsOutputRedirected);
        PlainInterval = plainInterval ?? TimeSpan.FromSeconds(10);
        BarWidth = Math.Max(5, barWidth);
    }

    /// <summary>True: one line updated in place; false: periodic plain lines.</summary>
    public bool Interactive { get; }

    /// <summary>Time between plain lines when not <see cref="Interactive"/>.</summary>
    public TimeSpan PlainInterval { get; }

    /// <summary>Minimum time between redraws of the interactive line.</summary>
    public TimeSpan RedrawInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Characters between the brackets of the bar.</summary>
    public int BarWidth { get; }

    /// <inheritdoc/>
    public void Report(TrainingProgress value)
    {
        lock (_gate)
        {
            bool first = !_sinceLastWrite.IsRunning;
            var interval = Interactive ? RedrawInterval : PlainInterval;
            if (!first && !value.IsLast && _sinceLastWrite.Elapsed < interval) return;
            _sinceLastWrite.Restart();

            if (Interactive)
            {
                string line = Format(value, withBar: true);
                int pad = Math.Max(0, _lastLength - line.Length);
                _writer.Write("\r" + line + new string(' ', pad));
                _lastLength = line.Length;
                _lastLine = line;
                _lineOpen = !value.IsLast;
                if (value.IsLast) _writer.WriteLine();
            }
            else _writer.WriteLine(Format(value, withBar: false));
            _writer.Flush();
        }
    }

    /// <summary>
    /// Writes a message on its own line without breaking the bar: in interactive mode the bar line is overwritten by
    /// the message and redrawn below it. Use it as <see cref="TrainingOptions.Log"/> (<c>Log = bar.WriteLine</c>).
    /// </summary>
    public void WriteLine(string message)
    {
        lock (_gate)
        {
            if (Interactive && _lineOpen)
            {
                int pad = Math.Max(0, _lastLength - message.Length);
                _writer.WriteLine("\r" + message + new string(' ', pad));
                _writer.Write(_lastLine);
                _lastLength = _lastLine.Length;
            }
            else _writer.WriteLine(message);
            _writer.Flush();
        }
    }

    /// <summary>Ends an open interactive line (e.g. before other output when a run stops early).</summary>
    public void Finish()
    {
        lock (_gate)
        {
            if (!_lineOpen) return;
            _writer.WriteLine();
            _writer.Flush();
            _lineOpen = false;
            _lastLength = 0;
        }
    }

    /// <summary>The text of one report: <c>stage [bar] pct step/total | loss (avg) | steps/s | ETA</c>.</summary>
    public string Format(TrainingProgress p, bool withBar = true)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(p.Stage.ToString().ToLowerInvariant()).Append(' ');
        if (withBar)
        {
            int filled = (int)Math.Round(p.Fraction * BarWidth);
            sb.Append('[').Append('#', filled).Append('.', BarWidth - filled).Append("] ");
        }
        sb.Append((p.Fraction * 100).ToString("0.0", c)).Append("% ");
        sb.Append(p.Step.ToString(c)).Append('/').Append(p.TotalSteps.ToString(c));
        sb.Append(" ep ").Append(p.Epoch.ToString(c));
        sb.Append(" | loss ").Append(FormatLoss(p.Loss)).Append(" (avg ").Append(FormatLoss(p.SmoothedLoss)).Append(')');
        sb.Append(" | ").Append(p.StepsPerSecond >= 10 ? p.StepsPerSecond.ToString("0.0", c) : p.StepsPerSecond.ToString("0.00", c)).Append(" steps/s");
        sb.Append(" | ETA ").Append(p.IsLast ? "done" : p.Eta is { } eta ? FormatTime(eta) : "--:--");
        if (!withBar) sb.Append(" | elapsed ").Append(FormatTime(p.Elapsed));
        return sb.ToString();
    }

    static string FormatLoss(double v) =>
        double.IsFinite(v) && (Math.Abs(v) >= 1e-3 || v == 0) && Math.Abs(v) < 1e5
            ? v.ToString("0.0000", CultureInfo.InvariantCulture)
            : v.ToString("0.###e+0", CultureInfo.InvariantCulture);

    static string FormatTime(TimeSpan t) =>
        t.TotalHours >= 1
            ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}"
            : $"{t.Minutes:00}:{t.Seconds:00}";
}
