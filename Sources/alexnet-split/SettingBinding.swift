import AlexNetTraining
import ArgumentParser

/// How the option groups bind to `RunConfiguration`: each option is an optional property named
/// and described by its setting, so a group knows what was given (not nil, or a flag that is
/// set) without reading the command line again.
extension Setting {
    /// The setting's help, with its default.
    var argumentHelp: ArgumentHelp {
        if help.isEmpty { return .hidden }
        if Value.self == Bool.self { return ArgumentHelp(help) }
        return ArgumentHelp("\(help) (default: \(defaultText))")
    }

    /// The option's name on the command line.
    var long: NameSpecification { .customLong(name) }
}

/// `TrainingOptions` from the groups' properties: a property that was given sets its setting;
/// the rest keep their defaults. `given` names the settings given.
struct SettingBinder {
    var options = TrainingOptions()
    var given: Set<String> = []

    mutating func set<Value>(_ setting: Setting<Value>, _ value: Value?) {
        guard let value else { return }
        options[keyPath: setting.path] = value
        given.insert(setting.name)
    }

    mutating func setOptional<Value>(_ setting: Setting<Value?>, _ value: Value?) {
        guard let value else { return }
        options[keyPath: setting.path] = value
        given.insert(setting.name)
    }

    /// A flag turns its setting from the default to the other value.
    mutating func flag(_ setting: Setting<Bool>, _ isSet: Bool) {
        guard isSet else { return }
        options[keyPath: setting.path] = !setting.defaultValue
        given.insert(setting.name)
    }
}

/// An option group that binds its properties to settings.
protocol SettingGroupFlags: ParsableArguments {
    func bind(_ binder: inout SettingBinder)
}
