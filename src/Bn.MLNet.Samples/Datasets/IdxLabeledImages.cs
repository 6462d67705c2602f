namespace Bn.MLNet.Samples.Datasets;

/// <summary>Images and their labels, read together from an IDX image file and an IDX label file of the same count.</summary>
public sealed class IdxLabeledImages
{
    /// <summary>Pairs images with labels.</summary>
    /// <exception cref="ArgumentException">The counts differ.</exception>
    public IdxLabeledImages(IdxImages images, byte[] labels)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.Count != labels.Length)
        {
            throw new ArgumentException($"{images.Count} images but {labels.Length} labels.", nameof(labels));
        }

        Images = images;
        Labels = labels;
    }

    /// <summary>The images.</summary>
    public IdxImages Images { get; }

    /// <summary>One label byte per image, as stored in the file (Fashion-MNIST: class index 0..9).</summary>
    public byte[] Labels { get; }

    /// <summary>Number of labelled images.</summary>
    public int Count => Labels.Length;
}
