using Microsoft.ML;

namespace Svg.ML.MLNet.Dense;

/// <summary>
/// Catalog entry points of the dense heads: <c>mlContext.Transforms.SvgSegmentation(options)</c> and
/// <c>mlContext.Transforms.SvgDepth(options)</c> (register the context with <see cref="SvgCatalog.RegisterSvg"/> to
/// use its device settings).
/// </summary>
public static class SvgDenseCatalog
{
    /// <summary>A segmentation head on a feature-map column (set <c>options.Training.NumClasses</c> and the run length).</summary>
    public static SvgSegmentationEstimator SvgSegmentation(this TransformsCatalog catalog, SvgDenseOptions options) =>
        new(new ContextRef(catalog), options);

    /// <summary>A depth head on a feature-map column and a depth column in metres.</summary>
    public static SvgDepthEstimator SvgDepth(this TransformsCatalog catalog, SvgDenseOptions options) =>
        new(new ContextRef(catalog), options);
}
