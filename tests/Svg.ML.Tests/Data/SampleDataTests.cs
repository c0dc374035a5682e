using Xunit;
using Svg.ML.Data;

namespace Svg.ML.Tests.Data;

public class SampleDataTests
{
    [Fact]
    public void BundledData_IsFoundFromTheTestAssembly_AndIsTheDefaultFashionMnist()
    {
        Assert.NotNull(SampleData.Root);
        Assert.True(File.Exists(Path.Combine(SampleData.Root!, "README.md")), "data/README.md (sources and licences) is missing");
        Assert.Equal(SampleData.FashionMnistDirectory, FashionMnist.DefaultDirectory);
        using var test = FashionMnist.Load(train: false);
        using var train = FashionMnist.Load(train: true);
        Assert.Equal((2000, 6000), (test.Count, train.Count));
    }

    [Fact]
    public void MissingImage_NamesTheFileAndTheFolder()
    {
        var e = Assert.Throws<FileNotFoundException>(() => SampleData.Image("no-such-photo.png"));
        Assert.Contains("no-such-photo.png", e.Message);
        Assert.Contains("images", e.Message);
        foreach (var name in new[] { "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "brick.png", "grass.png", "gravel.png" })
            Assert.True(File.Exists(SampleData.Image(name)), name);
    }
}
