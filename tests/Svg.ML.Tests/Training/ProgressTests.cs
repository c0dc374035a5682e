using Svg.ML.Training;
using Xunit;

namespace Svg.ML.Tests.Training;

public class ProgressTests
{
    static TrainingProgress P(long step, long total = 10, double loss = 0.5) =>
        new(TrainingStage.Diffusion, step, total, 0, loss, loss, 12.5, TimeSpan.FromSeconds(75), 1e-4, TimeSpan.FromSeconds(3));

    [Fact]
    public void Interactive_RedrawsOneLine_AndEndsWithANewline()
    {
        var sw = new StringWriter();
        var bar = new ConsoleProgressBar(sw, interactive: true) { RedrawInterval = TimeSpan.Zero };
        bar.Report(P(1));
        bar.Report(P(5));
        bar.Report(P(10));
        string text = sw.ToString();
        Assert.Equal(3, text.Count(c => c == '\r'));
        Assert.EndsWith(Environment.NewLine, text);
        Assert.Single(text.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("[###############...............] 50.0% 5/10", text);
        Assert.Contains("loss 0.5000", text);
        Assert.Contains("12.5 steps/s", text);
        Assert.Contains("ETA 01:15", text);
        Assert.Contains("ETA done", text);
    }

    [Fact]
    public void WriteLine_PutsMessagesAboveTheBar()
    {
        var sw = new StringWriter();
        var bar = new ConsoleProgressBar(sw, interactive: true) { RedrawInterval = TimeSpan.Zero };
        bar.Report(P(3));
        bar.WriteLine("checkpoint written");
        bar.Report(P(10));
        var lines = sw.ToString().Split(Environment.NewLine);
        Assert.StartsWith("checkpoint written", lines[0].Split('\r')[^1]);   // what the terminal shows: the message over the bar
        Assert.Contains("3/10", lines[1]);          // the bar, redrawn after the message, then updated in place
        Assert.Contains("10/10", lines[1]);
    }

    [Fact]
    public void Redirected_WritesPlainLines_FirstAndLastAndPeriodically()
    {
        var sw = new StringWriter();
        var bar = new ConsoleProgressBar(sw, interactive: false, plainInterval: TimeSpan.FromHours(1));
        for (long s = 1; s <= 10; s++) bar.Report(P(s));
        var lines = sw.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);     // first and last (the interval is long)
        Assert.DoesNotContain('\r', sw.ToString());
        Assert.StartsWith("diffusion 10.0% 1/10", lines[0]);
        Assert.Contains("100.0% 10/10", lines[1]);
    }

    [Theory]
    [InlineData(TrainingStage.Autoencoder, "autoencoder ")]
    [InlineData(TrainingStage.Diffusion, "diffusion ")]
    [InlineData(TrainingStage.Segmentation, "segmentation ")]
    [InlineData(TrainingStage.Depth, "depth ")]
    public void Format_NamesTheStage(TrainingStage stage, string prefix)
    {
        var bar = new ConsoleProgressBar(new StringWriter(), interactive: false);
        Assert.StartsWith(prefix, bar.Format(P(1) with { Stage = stage }, withBar: false));
    }

    [Fact]
    public void Meter_SmoothsTheLoss_WithBiasCorrection()
    {
        var meter = new ProgressMeter(TrainingStage.Autoencoder, 0, 100);
        var first = meter.Record(1, 0, 2.0, 1e-4);
        Assert.Equal(2.0, first.SmoothedLoss, 12);     // bias-corrected: the first average is the first loss
        var second = meter.Record(2, 0, 4.0, 1e-4);
        double expected = (0.98 * 0.02 * 2.0 + 0.02 * 4.0) / (1 - 0.98 * 0.98);
        Assert.Equal(expected, second.SmoothedLoss, 12);
        Assert.Equal(100, second.TotalSteps);
    }

    [Fact]
    public void DerivedSeeds_DifferPerStreamAndIndex_AndPermutationsAreReproducible()
    {
        Assert.NotEqual(TrainingRandom.Derive(1, TrainingRandom.Order, 0), TrainingRandom.Derive(1, TrainingRandom.Order, 1));
        Assert.NotEqual(TrainingRandom.Derive(1, TrainingRandom.Order, 0), TrainingRandom.Derive(1, TrainingRandom.Noise, 0));
        Assert.NotEqual(TrainingRandom.Derive(1, TrainingRandom.Order, 0), TrainingRandom.Derive(2, TrainingRandom.Order, 0));
        var p = TrainingRandom.EpochPermutation(5, 3, 100);
        Assert.Equal(p, TrainingRandom.EpochPermutation(5, 3, 100));
        Assert.NotEqual(p, TrainingRandom.EpochPermutation(5, 4, 100));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), p.Order());
    }
}
