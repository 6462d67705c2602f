using Bn.MLNet.Training;

namespace Bn.MLNet.Tests.Training;

/// <summary>Random erasing in <see cref="BatchAugmenter"/>: what it writes, where, how often, and its option checks.</summary>
public class RandomErasingTests
{
    private const int C = 2, H = 16, W = 12;

    private static TrainerOptions Erasing(double p, int seed = 3) => new() { BatchSize = 8, RandomErasingProbability = p, Seed = seed };

    /// <summary>Values far from the fill, all distinct, so any written pixel is visible.</summary>
    private static float[] Images(int n)
    {
        var x = new float[n * C * H * W];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = 100 + i;
        }

        return x;
    }

    [Fact]
    public void ProbabilityOneSetsOneRectangleToTheChannelMeansAndNothingElse()
    {
        float[] mean = { -1.5f, 2.25f };
        var augmenter = BatchAugmenter.Create(Erasing(1), C, H, W, mean)!;
        float[] src = Images(8);
        float[] output = augmenter.Apply(src, 8);
        var areas = new HashSet<int>();
        for (int r = 0; r < 8; r++)
        {
            (int top, int left, int bottom, int right) = ChangedBox(src, output, r, channel: 0);
            int height = bottom - top + 1, width = right - left + 1;
            Assert.InRange(height * width, 0.02 * H * W, 0.25 * H * W);
            areas.Add(height * width);
            for (int ch = 0; ch < C; ch++)
            {
                for (int y = 0; y < H; y++)
                {
                    for (int x = 0; x < W; x++)
                    {
                        int i = (((r * C) + ch) * H * W) + (y * W) + x;
                        bool inside = y >= top && y <= bottom && x >= left && x <= right;
                        Assert.Equal(inside ? mean[ch] : src[i], output[i]);
                    }
                }
            }
        }

        Assert.True(areas.Count > 1, "the erased area should be drawn at random");
    }

    [Fact]
    public void ProbabilityZeroLeavesTheImagesAlone()
    {
        Assert.Null(BatchAugmenter.Create(Erasing(0), C, H, W, new float[C]));
        var o = Erasing(0);
        o.HorizontalFlip = true;
        float[] src = Images(8);
        float[] flippedOnly = BatchAugmenter.Create(o, C, H, W, new[] { 5f, 5f })!.Apply(src, 8);
        Assert.DoesNotContain(5f, flippedOnly.Take(8 * C * H * W));
        Assert.Equal(src.OrderBy(v => v), flippedOnly.Take(src.Length).OrderBy(v => v));
    }

    [Fact]
    public void HalfProbabilityErasesAboutHalfTheImages()
    {
        var augmenter = BatchAugmenter.Create(Erasing(0.5), C, H, W, new[] { 0f, 0f })!;
        int erased = 0;
        for (int batch = 0; batch < 50; batch++)
        {
            float[] output = augmenter.Apply(Images(8), 8);
            for (int r = 0; r < 8; r++)
            {
                erased += output.Skip(r * C * H * W).Take(C * H * W).Contains(0f) ? 1 : 0;
            }
        }

        Assert.InRange(erased, 150, 250);
    }

    [Fact]
    public void TheSameSeedAndEpochGiveTheSameErasing()
    {
        float[] Erased(int seed, int epoch)
        {
            var augmenter = BatchAugmenter.Create(Erasing(0.7, seed), C, H, W, new[] { 0f, 1f })!;
            augmenter.StartEpoch(EpochSeeds.Augmentation(seed, epoch));
            return (float[])augmenter.Apply(Images(8), 8).Clone();
        }

        Assert.Equal(Erased(11, 3), Erased(11, 3));
        Assert.NotEqual(Erased(11, 3), Erased(12, 3));
        Assert.NotEqual(Erased(11, 3), Erased(11, 4));
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void AnInvalidProbabilityThrowsNamingTheOption(double p)
    {
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(Erasing(p)));
        Assert.Equal(nameof(TrainerOptions.RandomErasingProbability), ex.ParamName);
        Assert.Contains("RandomErasingProbability", ex.Message);
        var options = new BatchNormCnnOptions { RandomErasingProbability = p };
        ex = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("BatchNormCnnOptions.RandomErasingProbability", ex.Message);
    }

    [Fact]
    public void TheLibraryOptionReachesTheTrainer()
    {
        Assert.Equal(0, new BatchNormCnnOptions().RandomErasingProbability);
        Assert.Equal(0.4, new BatchNormCnnOptions { RandomErasingProbability = 0.4 }.Trainer.RandomErasingProbability);
    }

    /// <summary>The bounding box of the pixels of row <paramref name="r"/> that the augmenter changed in one channel.</summary>
    private static (int Top, int Left, int Bottom, int Right) ChangedBox(float[] src, float[] output, int r, int channel)
    {
        int top = H, left = W, bottom = -1, right = -1;
        for (int y = 0; y < H; y++)
        {
            for (int x = 0; x < W; x++)
            {
                int i = (((r * C) + channel) * H * W) + (y * W) + x;
                if (src[i] != output[i])
                {
                    (top, left, bottom, right) = (Math.Min(top, y), Math.Min(left, x), Math.Max(bottom, y), Math.Max(right, x));
                }
            }
        }

        Assert.True(bottom >= 0, $"row {r} was not erased");
        return (top, left, bottom, right);
    }
}
