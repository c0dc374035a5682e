using Svg.ML.Dense.Synthetic;
using Xunit;

namespace Svg.ML.Tests.Dense;

public class SceneGeneratorTests
{
    static readonly SceneOptions Small = new() { Size = 32, MinObjects = 2, MaxObjects = 5 };

    static SceneGenerator Generator(long seed) => SceneGenerator.FromSampleData(train: false, objectImages: 200, Small, seed);

    [Fact]
    public void SameSeed_GivesIdenticalScenes_InAnyOrder_AndAnotherSeedDiffers()
    {
        var a = Generator(7);
        var b = Generator(7);
        var other = Generator(8);
        var first = a.Generate(3);
        var again = b.Generate(3);
        Assert.Equal(first.Rgb, again.Rgb);
        Assert.Equal(first.Classes, again.Classes);
        Assert.Equal(first.Depth, again.Depth);
        Assert.NotEqual(first.Rgb, other.Generate(3).Rgb);
        Assert.NotEqual(first.Rgb, a.Generate(4).Rgb);

        // A batch renders each scene from its own stream: scene 3 inside [2, 5) is scene 3 alone.
        using var set = b.GenerateSet(2, 3);
        Assert.Equal((3, 32), (set.Count, set.Size));
        Assert.Equal(first.Rgb, set.Images[1].flatten().data<byte>().ToArray());
        Assert.Equal(first.Classes, set.Classes[1].flatten().data<byte>().ToArray());
        Assert.Equal(first.Depth, set.Depth[1].flatten().data<float>().ToArray());
    }

    [Fact]
    public void ClassMapAndDepth_FollowThePaintersOrder_AndTheGroundPlane()
    {
        var generator = Generator(11);
        int s = Small.Size, occluded = 0, objectPixels = 0;
        double f = Small.FocalLength * s;
        for (int index = 0; index < 24; index++)
        {
            var scene = generator.Generate(index);
            var objects = scene.Objects;
            Assert.InRange(objects.Count, Small.MinObjects, Small.MaxObjects);
            for (int k = 1; k < objects.Count; k++) Assert.True(objects[k - 1].Depth >= objects[k].Depth, "objects are listed far first");
            foreach (var o in objects)
            {
                // Perspective: side = round(f · height / depth), so side · depth / f is the height up to one pixel's rounding.
                double slack = o.Depth / f;
                Assert.InRange(o.Side * o.Depth / f, Small.ObjectHeight.Min - slack, Small.ObjectHeight.Max + slack);
                Assert.InRange(o.Depth, scene.NearDepth, scene.FarDepth);
            }
            var masks = objects.Select(generator.ObjectMask).ToArray();
            var groundDepthOfRow = new float?[s];
            for (int p = 0; p < s * s; p++)
            {
                var covering = Enumerable.Range(0, objects.Count).Where(k => masks[k][p]).ToArray();
                if (covering.Length == 0)
                {
                    Assert.Equal(SceneGenerator.BackgroundClass, scene.Classes[p]);
                    int row = p / s;
                    groundDepthOfRow[row] ??= scene.Depth[p];
                    Assert.Equal(groundDepthOfRow[row], scene.Depth[p]);   // the ground's depth depends on the row only
                    continue;
                }
                // The nearest covering object shows: its class (label + 1) and exactly its depth.
                var nearest = covering.Select(k => objects[k]).MinBy(o => o.Depth)!;
                Assert.Equal(nearest.Label + 1, scene.Classes[p]);
                Assert.Equal((float)nearest.Depth, scene.Depth[p]);
                objectPixels++;
                if (covering.Length > 1) occluded++;
            }
            // The ground recedes toward the top: depth strictly decreases down the image, from FarDepth to NearDepth.
            var rows = Enumerable.Range(0, s).Where(r => groundDepthOfRow[r] is not null).ToArray();
            for (int k = 1; k < rows.Length; k++) Assert.True(groundDepthOfRow[rows[k - 1]] > groundDepthOfRow[rows[k]], $"scene {index}: ground depth does not grow toward the horizon");
            // Row centres 0.5 and s − 0.5 see exactly the far and near depths (float rounding only: 1e-5 relative).
            if (groundDepthOfRow[s - 1] is float bottom) Assert.Equal(scene.NearDepth, bottom, scene.NearDepth * 1e-5);
            if (groundDepthOfRow[0] is float top) Assert.Equal(scene.FarDepth, top, scene.FarDepth * 1e-5);
        }
        Assert.True(objectPixels > 24 * 10, $"only {objectPixels} object pixels in 24 scenes");
        Assert.True(occluded > 0, "no occlusion happened: the test would not check the painter's order");
    }

    [Fact]
    public void Images_AreTexturedAndTheSetFeedsTheImagePipelines()
    {
        var generator = Generator(3);
        using var set = generator.GenerateSet(0, 8);
        using var images = set.ToLabeledImages();
        Assert.Equal((8, 3, 32, 32), (images.Count, images.Channels, images.Height, images.Width));
        Assert.Contains("scenes-v1", images.Identity);
        using var asFloat = set.Images.to(TorchSharp.torch.ScalarType.Float32);
        Assert.True(asFloat.std().item<float>() > 10, "scenes are (nearly) uniform");
        Assert.InRange(set.Classes.max().item<byte>(), 1, SceneGenerator.NumClasses - 1);
        Assert.True(set.Depth.min().item<float>() >= Small.NearDepth.Min && set.Depth.max().item<float>() <= Small.FarDepth.Max);
        Assert.Throws<ArgumentException>(() => new SceneOptions { MinObjects = 3, MaxObjects = 2 }.Validate());
    }
}
