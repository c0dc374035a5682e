using SkiaSharp;

namespace Svg.ML.PaperClaims;

/// <summary>One line of a <see cref="LinePlot"/>; with <paramref name="Floor"/>, also a dashed horizontal line at that value.</summary>
public sealed record PlotSeries(string Name, SKColor Color, IReadOnlyList<(double X, double Y)> Points, double? Floor = null, string? FloorName = null);

/// <summary>A minimal line plot (axes, ticks, grid, markers, legend) written as PNG with SkiaSharp.</summary>
public static class LinePlot
{
    /// <summary>Draws <paramref name="series"/> and saves the PNG at <paramref name="path"/>.</summary>
    public static void Save(string path, string title, string xLabel, string yLabel, IReadOnlyList<PlotSeries> series,
                            int width = 720, int height = 440, bool logX = false)
    {
        var all = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.Y)).ToList();
        if (all.Count == 0) throw new ArgumentException("nothing to plot.");
        double Tx(double x) => logX ? Math.Log10(x) : x;
        double x0 = all.Min(p => Tx(p.X)), x1 = all.Max(p => Tx(p.X));
        var floors = series.Where(s => s.Floor is double f && double.IsFinite(f)).Select(s => s.Floor!.Value).ToList();
        double y0 = Math.Min(0, all.Min(p => p.Y)), y1 = Math.Max(all.Max(p => p.Y), floors.DefaultIfEmpty(0).Max());
        if (x1 <= x0) x1 = x0 + 1;
        double pad = (x1 - x0) * 0.04;   // keep the end markers inside the frame
        x0 -= pad;
        x1 += pad;
        var yTicks = NiceTicks(y0, y1 * 1.05);
        y1 = yTicks[^1];
        y0 = yTicks[0];

        const float left = 78, right = 20, top = 44, bottom = 58;
        float pw = width - left - right, ph = height - top - bottom;
        float X(double x) => left + (float)((Tx(x) - x0) / (x1 - x0)) * pw;
        float Y(double y) => top + ph - (float)((y - y0) / (y1 - y0)) * ph;

        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var c = surface.Canvas;
        c.Clear(SKColors.White);
        using var typeface = Typeface();
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var small = new SKPaint { Color = new SKColor(60, 60, 60), IsAntialias = true };
        using var textFont = new SKFont(typeface, 13);
        using var smallFont = new SKFont(typeface, 11);
        using var titleFont = new SKFont(typeface, 15) { Embolden = true };
        using var grid = new SKPaint { Color = new SKColor(225, 225, 225), StrokeWidth = 1 };
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.2f, IsStroke = true };

        foreach (double t in yTicks)
        {
            c.DrawLine(left, Y(t), left + pw, Y(t), grid);
            string label = Format(t);
            c.DrawText(label, left - 6 - smallFont.MeasureText(label), Y(t) + 4, smallFont, small);
        }
        var xTicks = all.Select(p => p.X).Distinct().OrderBy(v => v).ToList();
        foreach (double t in xTicks)
        {
            c.DrawLine(X(t), top, X(t), top + ph, grid);
            string label = Format(t);
            c.DrawText(label, X(t) - smallFont.MeasureText(label) / 2, top + ph + 16, smallFont, small);
        }
        c.DrawRect(left, top, pw, ph, axis);
        c.DrawText(title, left, top - 18, titleFont, text);
        c.DrawText(xLabel, left + pw / 2 - textFont.MeasureText(xLabel) / 2, height - 14, textFont, text);
        c.Save();
        c.RotateDegrees(-90);
        c.DrawText(yLabel, -(top + ph / 2) - textFont.MeasureText(yLabel) / 2, 18, textFont, text);
        c.Restore();

        float legendY = top + 16;
        foreach (var s in series)
        {
            using var line = new SKPaint { Color = s.Color, StrokeWidth = 2.2f, IsAntialias = true, IsStroke = true };
            using var dot = new SKPaint { Color = s.Color, IsAntialias = true };
            var pts = s.Points.Where(p => double.IsFinite(p.Y)).OrderBy(p => p.X).ToList();
            for (int i = 1; i < pts.Count; i++) c.DrawLine(X(pts[i - 1].X), Y(pts[i - 1].Y), X(pts[i].X), Y(pts[i].Y), line);
            foreach (var p in pts) c.DrawCircle(X(p.X), Y(p.Y), 3.5f, dot);
            float lx = left + pw - 290;
            c.DrawLine(lx, legendY - 4, lx + 22, legendY - 4, line);
            c.DrawText(s.Name, lx + 28, legendY, smallFont, small);
            legendY += 16;
            if (s.Floor is double floor && double.IsFinite(floor))
            {
                using var dashed = new SKPaint { Color = s.Color, StrokeWidth = 1.4f, IsAntialias = true, IsStroke = true,
                                                 PathEffect = SKPathEffect.CreateDash(new[] { 6f, 4f }, 0) };
                c.DrawLine(left, Y(floor), left + pw, Y(floor), dashed);
                c.DrawLine(lx, legendY - 4, lx + 22, legendY - 4, dashed);
                c.DrawText(s.FloorName ?? "floor", lx + 28, legendY, smallFont, small);
                legendY += 16;
            }
        }

        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var file = File.Create(path);
        data.SaveTo(file);
    }

    /// <summary>The default typeface, or a common system font when the default has no glyphs (SkiaSharp builds without fontconfig).</summary>
    static SKTypeface Typeface()
    {
        var candidates = new[]
        {
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/System/Library/Fonts/Helvetica.ttc",
            "C:\\Windows\\Fonts\\arial.ttf",
        };
        foreach (var f in candidates)
            if (File.Exists(f) && SKTypeface.FromFile(f) is { } t) return t;
        return SKTypeface.Default;
    }

    static string Format(double v) => Math.Abs(v) >= 1000 || v == Math.Floor(v)
        ? v.ToString("0", System.Globalization.CultureInfo.InvariantCulture)
        : v.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>About five round tick values covering [lo, hi].</summary>
    static double[] NiceTicks(double lo, double hi)
    {
        if (hi <= lo) hi = lo + 1;
        double raw = (hi - lo) / 5, mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1, 2, 2.5, 5, 10 }.Select(m => m * mag).First(s => s >= raw);
        double start = Math.Floor(lo / step) * step, end = Math.Ceiling(hi / step) * step;
        var ticks = new List<double>();
        for (double t = start; t <= end + step / 2; t += step) ticks.Add(Math.Round(t, 10));
        return ticks.ToArray();
    }
}
