namespace Bn.MLNet.Networks;

/// <summary>
/// How settings validators report a broken rule: an <see cref="ArgumentException"/> whose message starts with the name
/// the user wrote for the setting (for example <c>BatchNormCnnOptions.Epochs</c> or <c>TrainerOptions.Epochs</c>, given
/// by <paramref name="name"/>) and whose <see cref="ArgumentException.ParamName"/> is the field.
/// </summary>
internal readonly struct Requirement(Func<string, string> name)
{
    /// <summary>Throws when <paramref name="condition"/> is false: "NAME MESSAGE.".</summary>
    public void That(bool condition, string field, string message)
    {
        if (!condition)
            throw new ArgumentException($"{name(field)} {message}.", field);
    }
}
